"""Asserting RFC 9457 problem answers."""

PROBLEM = "application/problem+json"


def problem(r, status: int, code: str | None = None) -> dict:
    """The problem body of ``r``, after checking its status, content type and (if given) code."""
    assert r.status_code == status, (r.status_code, r.text[:500])
    assert r.headers["Content-Type"].startswith(PROBLEM), r.headers["Content-Type"]
    body = r.json()
    if code:
        assert body["code"] == code, body
    return body
