"""SMS text: encoding detection (GSM-7 or UCS-2) and segment counting."""

from __future__ import annotations

GSM7_BASIC = set(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà")
GSM7_EXTENDED = set("^{}\\[~]|€\f")
MAX_SEGMENTS = 10


def encoding(text: str) -> str:
    return "GSM-7" if all(c in GSM7_BASIC or c in GSM7_EXTENDED for c in text) else "UCS-2"


def units(text: str, enc: str) -> int:
    if enc == "GSM-7":
        return sum(2 if c in GSM7_EXTENDED else 1 for c in text)
    return len(text.encode("utf-16-le")) // 2  # characters outside the BMP take two


def segments(text: str, enc: str | None = None) -> int:
    enc = enc or encoding(text)
    n = units(text, enc)
    single, multi = (160, 153) if enc == "GSM-7" else (70, 67)
    if n <= single:
        return 1
    return -(-n // multi)


def describe(text: str) -> dict:
    enc = encoding(text)
    return {"encoding": enc, "segments": segments(text, enc), "length": units(text, enc)}
