"""What a pairing code looks like to people and phones: the code, the server URL and a QR code."""

from __future__ import annotations

from urllib.parse import quote

import segno


def pairing_uri(server_url: str, code: str) -> str:
    """The QR content: ``smsgw://pair?url=<tenant URL>&code=<code>`` (the companion accepts it as is)."""
    return f"smsgw://pair?url={quote(server_url, safe='')}&code={code}"


def qr_svg_data_uri(content: str) -> str:
    qr = segno.make(content, error="m")
    return qr.svg_data_uri(scale=6, border=2)


def pairing_payload(server_url: str, code: str, expires) -> dict:
    uri = pairing_uri(server_url, code)
    return {"code": code, "expires_at": expires.isoformat(), "server_url": server_url, "pairing_uri": uri,
            "qr_svg": qr_svg_data_uri(uri),
            "command": f"smsgw-companion pair {server_url} {code}"}
