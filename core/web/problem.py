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
        self.title = title or TITLES.get(status, "Error")
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


TITLES = {
    400: "Bad request", 401: "Unauthorized", 403: "Forbidden", 404: "Not found",
    405: "Method not allowed", 409: "Conflict", 413: "Payload too large", 415: "Unsupported media type",
    422: "Unprocessable content", 429: "Too many requests", 500: "Internal server error",
    503: "Service unavailable",
}
