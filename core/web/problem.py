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

    @classmethod
    def refused(cls, status: int, code: str, exc: Exception, **kwargs) -> "Problem":
        """The answer to a :class:`Refusal` (its msgid and arguments, translated where it is shown);
        another exception's text is passed on as it is."""
        if isinstance(exc, Refusal):
            return cls(status, code, exc.msgid, args=exc.msg_args or None, **kwargs)
        return cls(status, code, str(exc), **kwargs)

    def localized(self, gettext) -> tuple[str, str]:
        """``(title, detail)`` in the language of ``gettext`` (a catalogue's ``_(msgid, **args)``); an
        argument that is itself a :class:`core.i18n.Said` is translated too."""
        return gettext(self.title), gettext(self.msgid, **said_in(gettext, self.detail_args))

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


class Refusal(ValueError):
    """A domain refusal that a person reads: ``msgid`` (marked with ``N_()``) and the values of its
    ``%(name)s`` placeholders. ``str()`` is the English text (logs, the CLI); an answer translates it
    through :meth:`Problem.refused`. Services' own errors (``AuthError``, ``DeviceError`` …) derive from it."""

    def __init__(self, msgid: str, args: dict | None = None):
        self.msgid = msgid
        self.msg_args = args or {}
        super().__init__(msgid % self.msg_args if args else msgid)


def field_error(field: str, msgid: str, args: dict | None = None) -> dict:
    """An invalid field: ``message`` in English, ``msgid``/``args`` to translate it where it is answered."""
    return {"field": field, "message": msgid % args if args else msgid, "msgid": msgid, "args": args or {}}


def row_error(row: int, msgid: str, args: dict | None = None) -> dict:
    """An error of one row of an uploaded file: ``message`` in English, ``msgid``/``args`` to translate it
    where it is shown (templates: ``error_text(e)``)."""
    return {"row": row, "message": msgid % args if args else msgid, "msgid": msgid, "args": args or {}}


def _localized_error(error, gettext):
    """A validation error as answered: its ``message`` in the language of ``gettext`` (from its
    ``msgid`` and ``args`` when it has them, see :func:`core.bodyschema.public`), or in English."""
    if not isinstance(error, dict) or not isinstance(error.get("message"), str):
        return error
    answered = {k: v for k, v in error.items() if k not in ("msgid", "args")}
    if gettext is not None:
        answered["message"] = gettext(error.get("msgid") or error["message"], **said_in(gettext, error.get("args")))
    return answered


def said_in(gettext, args: dict | None) -> dict:
    """``args`` with each :class:`core.i18n.Said` value in ``gettext``'s language."""
    from ..i18n import Said, say

    return {k: say(gettext, v) if isinstance(v, Said) else v for k, v in (args or {}).items()}


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
                   N_("We cannot reach our database right now. Your request may not have been carried out: try "
                      "again in %(seconds)s seconds (sends with the same Idempotency-Key are stored once)."),
                   args={"seconds": RETRY_AFTER}, headers={"Retry-After": str(RETRY_AFTER)})


def tenant_moving(slug: str) -> Problem:
    """The answer while the workspace moves to another database server (``smsgw tenant move``):
    its writes pause for a few seconds; nothing was carried out."""
    from ..outage import MOVE_RETRY_AFTER

    return Problem(503, "tenant-moving",
                   N_("The workspace %(slug)s is moving to another database server. Nothing was changed: try "
                      "again in %(seconds)s seconds."),
                   args={"slug": slug, "seconds": MOVE_RETRY_AFTER}, headers={"Retry-After": str(MOVE_RETRY_AFTER)})
