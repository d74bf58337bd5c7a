"""RFC 9457 problem details for JSON APIs."""

from __future__ import annotations

PROBLEM_BASE = "https://smsgw.dev/problems/"
PROBLEM_CONTENT_TYPE = "application/problem+json"


class Problem(Exception):
    """Raise from an API handler to answer with ``application/problem+json``.

    :param status: HTTP status code.
    :param code: stable machine-readable code (also the last part of ``type``).
    :param detail: what went wrong and what to do, for a person.
    :param errors: for validation, a list of ``{"field": ..., "message": ...}``.
    :param args: the values of ``detail``'s ``%(name)s`` placeholders.

    ``title`` and ``detail`` are the English message ids, marked with ``N_()`` where the problem is
    raised (``N_("… %(limit)s bytes …")``, ``args={"limit": limit}``); the answer translates them into
    the request's language (:meth:`to_dict` with the language's ``_``), and so does an error
    page. ``type`` and ``code`` never change with the language. ``detail`` here is the English text.
    """

    def __init__(self, status: int, code: str, detail: str, title: str | None = None,
                 errors: list | None = None, headers: dict | None = None, args: dict | None = None, **extra):
        self.status = status
        self.code = code
        self.msgid = detail
        self.detail_args = args or {}  # (not ``args``: an exception's own ``args`` is its tuple)
        self.detail = detail % self.detail_args if args else detail
        super().__init__(self.detail)
        self.title = title or TITLES.get(status, N_("Error"))
        self.errors = errors
        self.headers = headers or {}
        self.extra = extra

    def localized(self, gettext) -> tuple[str, str]:
        """``(title, detail)`` in the language of ``gettext`` (a catalogue's ``_(msgid, **args)``)."""
        return gettext(self.title), gettext(self.msgid, **self.detail_args)

    def to_dict(self, instance: str | None = None, gettext=None) -> dict:
        title, detail = self.localized(gettext) if gettext is not None else (self.title, self.detail)
        body = {"type": PROBLEM_BASE + self.code, "title": title, "status": self.status,
                "code": self.code, "detail": detail}
        if instance:
            body["instance"] = instance
        if self.errors:
            body["errors"] = [_localized_error(e, gettext) for e in self.errors]
        body.update(self.extra)
        return body


def _localized_error(error, gettext):
    """A validation error as answered: its ``message`` in the language of ``gettext`` (from its
    ``msgid`` and ``args`` when it has them, see :func:`core.bodyschema.public`), or in English."""
    if not isinstance(error, dict) or not isinstance(error.get("message"), str):
        return error
    answered = {k: v for k, v in error.items() if k not in ("msgid", "args")}
    if gettext is not None:
        answered["message"] = gettext(error.get("msgid") or error["message"], **(error.get("args") or {}))
    return answered


def N_(message: str) -> str:
    """Mark a string for the translators' catalogue; it is translated where it is shown."""
    return message


TITLES = {
    400: N_("Bad request"), 401: N_("Unauthorized"), 402: N_("Payment required"), 403: N_("Forbidden"),
    404: N_("Not found"),
    405: N_("Method not allowed"), 409: N_("Conflict"), 413: N_("Payload too large"),
    415: N_("Unsupported media type"), 422: N_("Unprocessable content"), 429: N_("Too many requests"),
    500: N_("Internal server error"), 503: N_("Service unavailable"),
}


def database_unavailable() -> Problem:
    """The answer while PostgreSQL cannot be reached (see :mod:`core.outage`)."""
    from ..outage import RETRY_AFTER

    return Problem(503, "database-unavailable",
                   "We cannot reach our database right now. Your request may not have been carried out: "
                   f"try again in {RETRY_AFTER} seconds (sends with the same Idempotency-Key are stored once).",
                   headers={"Retry-After": str(RETRY_AFTER)})
