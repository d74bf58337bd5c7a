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
    """

    def __init__(self, status: int, code: str, detail: str, title: str | None = None,
                 errors: list | None = None, headers: dict | None = None, **extra):
        super().__init__(detail)
        self.status = status
        self.code = code
        self.detail = detail
        self.title = title or TITLES.get(status, N_("Error"))
        self.errors = errors
        self.headers = headers or {}
        self.extra = extra

    def to_dict(self, instance: str | None = None) -> dict:
        body = {"type": PROBLEM_BASE + self.code, "title": self.title, "status": self.status,
                "code": self.code, "detail": self.detail}
        if instance:
            body["instance"] = instance
        if self.errors:
            body["errors"] = self.errors
        body.update(self.extra)
        return body


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
