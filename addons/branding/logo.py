"""Logo uploads: a PNG checked chunk by chunk and re-written, or an SVG re-written from an allow-list.

**PNG.** The signature, then every chunk's length and CRC; the header's size within
:data:`MAX_SIDE`; the image data inflated (bounded) to exactly the size the header promises; ``IEND``
last with nothing after it: a file that is also something else (a "polyglot": HTML, a ZIP or a
script after the image, or in a text chunk) is refused. What is stored is re-written from the
image chunks alone (``IHDR``, ``PLTE``, ``tRNS``, ``IDAT``, ``IEND`` and the colour chunks), so no
text, metadata or private chunk of the upload is ever served.

**SVG, sanitised, not refused.** Resellers' logos are usually vectors, so SVG is accepted, but only
what a strict allow-list parser rebuilds: expat with no DOCTYPE, no entities and no processing
instructions (an XML bomb or an external entity is refused before anything is expanded); elements
and attributes only from :data:`SVG_ELEMENTS` / :data:`SVG_ATTRIBUTES` (no ``script``, no
``foreignObject``, no ``style``, no event attributes, no ``image``); links (``href``) only to
``#fragments`` of the same file, ``url(...)`` only as ``url(#id)``. Anything else refuses the
upload with the element or attribute named, rather than silently dropping it, so what is shown is
what was uploaded. The file is then written anew from the parse (no comments, CDATA or
whitespace tricks survive). It is served with ``Content-Security-Policy: sandbox; default-src
'none'`` and shown by pages only as ``<img>``, where browsers run no script in any case.
"""

from __future__ import annotations

import re
import struct
import xml.parsers.expat
import zlib
from dataclasses import dataclass
from xml.sax.saxutils import escape, quoteattr

from core.i18n import N_

MAX_BYTES = 256 * 1024
MAX_SIDE = 2048
MIN_SIDE = 16
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
PNG_KEPT = (b"IHDR", b"PLTE", b"tRNS", b"IDAT", b"IEND", b"gAMA", b"cHRM", b"sRGB", b"pHYs")
_CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}  # colour type → samples per pixel
_DEPTHS = {0: (1, 2, 4, 8, 16), 2: (8, 16), 3: (1, 2, 4, 8), 4: (8, 16), 6: (8, 16)}

SVG_NS = "http://www.w3.org/2000/svg"
XLINK_NS = "http://www.w3.org/1999/xlink"
SVG_ELEMENTS = frozenset({
    "svg", "g", "defs", "title", "desc", "path", "rect", "circle", "ellipse", "line", "polyline", "polygon",
    "text", "tspan", "linearGradient", "radialGradient", "stop", "clipPath", "mask", "use", "symbol",
})
SVG_ATTRIBUTES = frozenset({
    "id", "class", "width", "height", "viewBox", "preserveAspectRatio", "version", "x", "y", "x1", "y1", "x2", "y2",
    "cx", "cy", "r", "rx", "ry", "d", "points", "transform", "fill", "fill-opacity", "fill-rule", "stroke",
    "stroke-width", "stroke-opacity", "stroke-linecap", "stroke-linejoin", "stroke-miterlimit", "stroke-dasharray",
    "stroke-dashoffset", "opacity", "clip-path", "clip-rule", "mask", "offset", "stop-color", "stop-opacity",
    "gradientUnits", "gradientTransform", "spreadMethod", "fx", "fy", "fr", "font-family", "font-size", "font-weight",
    "font-style", "text-anchor", "dominant-baseline", "letter-spacing", "dx", "dy", "href", "clipPathUnits",
    "maskUnits", "maskContentUnits", "visibility", "display", "role", "aria-label", "aria-hidden",
})
_URL = re.compile(r"url\s*\(", re.I)
_LOCAL_URL = re.compile(r"url\(\s*#[A-Za-z0-9_.-]+\s*\)")


class LogoError(ValueError):
    """An upload refused: ``msgid`` (``N_()``) and its ``args``, for the person who uploaded it."""

    def __init__(self, msgid: str, **args):
        super().__init__(msgid % args if args else msgid)
        self.msgid, self.args_ = msgid, args


@dataclass(frozen=True)
class Logo:
    data: bytes
    content_type: str  # image/png or image/svg+xml


def check(data: bytes, filename: str = "") -> Logo:
    """The logo to store for an upload, or :class:`LogoError` saying why not."""
    if not data:
        raise LogoError(N_("Choose a PNG or SVG file to upload."))
    if len(data) > MAX_BYTES:
        raise LogoError(N_("The logo is %(size)s KiB; it may be at most %(limit)s KiB."),
                        size=len(data) // 1024 + 1, limit=MAX_BYTES // 1024)
    if data.startswith(PNG_SIGNATURE):
        return Logo(png(data), "image/png")
    head = data[:512].lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if head.startswith((b"<?xml", b"<svg", b"<!--")):
        return Logo(svg(data), "image/svg+xml")
    raise LogoError(N_("This file is neither a PNG nor an SVG image. Upload the logo as PNG or SVG."))


# -- PNG ----------------------------------------------------------------------------------------------

def png(data: bytes) -> bytes:
    """``data`` checked as one PNG image and nothing else, re-written from its image chunks."""
    pos, chunks = len(PNG_SIGNATURE), []
    while pos < len(data):
        if pos + 12 > len(data):
            raise LogoError(N_("The PNG file is cut short. Export it again and upload it."))
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        end = pos + 12 + length
        if end > len(data):
            raise LogoError(N_("The PNG file is cut short. Export it again and upload it."))
        body = data[pos + 8:end - 4]
        if zlib.crc32(kind + body) != struct.unpack(">I", data[end - 4:end])[0]:
            raise LogoError(N_("The PNG file is damaged (a checksum does not match). Export it again."))
        chunks.append((kind, body))
        pos = end
        if kind == b"IEND":
            break
    if not chunks or chunks[0][0] != b"IHDR" or len(chunks[0][1]) != 13:
        raise LogoError(N_("The PNG file has no valid header. Export it again and upload it."))
    if chunks[-1][0] != b"IEND":
        raise LogoError(N_("The PNG file is cut short. Export it again and upload it."))
    if pos != len(data):
        raise LogoError(N_("The PNG file carries %(count)s bytes after the image's end: it is also another "
                           "kind of file. Export the logo again as a plain PNG."), count=len(data) - pos)
    width, height, depth, colour, compression, filtering, interlace = struct.unpack(">IIBBBBB", chunks[0][1])
    if not (MIN_SIDE <= width <= MAX_SIDE and MIN_SIDE <= height <= MAX_SIDE):
        raise LogoError(N_("The logo is %(width)s × %(height)s pixels; each side must be %(low)s to %(high)s "
                           "pixels."), width=width, height=height, low=MIN_SIDE, high=MAX_SIDE)
    if colour not in _DEPTHS or depth not in _DEPTHS[colour] or compression or filtering or interlace > 1:
        raise LogoError(N_("The PNG file has no valid header. Export it again and upload it."))
    expected = _image_bytes(width, height, depth, _CHANNELS[colour], interlace)
    idat = b"".join(body for kind, body in chunks if kind == b"IDAT")
    inflater = zlib.decompressobj()
    try:
        pixels = inflater.decompress(idat, expected + 1)
    except zlib.error:
        pixels = b""
    if len(pixels) != expected or not inflater.eof:
        raise LogoError(N_("The PNG file's image data does not match its size. Export it again and upload it."))
    out = [PNG_SIGNATURE]
    for kind, body in chunks:
        if kind in PNG_KEPT:
            out.append(struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body)))
    return b"".join(out)


def _image_bytes(width: int, height: int, depth: int, channels: int, interlace: int) -> int:
    """How many bytes the inflated image data holds: a filter byte and the samples of each row
    (of each of the seven Adam7 passes when interlaced)."""
    def rows(w: int, h: int) -> int:
        return 0 if w == 0 or h == 0 else h * (1 + (w * depth * channels + 7) // 8)

    if not interlace:
        return rows(width, height)
    passes = ((0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2))
    return sum(rows((width - x + dx - 1) // dx, (height - y + dy - 1) // dy) for x, y, dx, dy in passes)


# -- SVG ----------------------------------------------------------------------------------------------

def svg(data: bytes) -> bytes:
    """``data`` parsed with the allow-list and written anew; :class:`LogoError` on anything outside it."""
    out: list[str] = []
    depth = [0]
    parser = xml.parsers.expat.ParserCreate(namespace_separator=" ")

    def refuse_doctype(*_args):
        raise LogoError(N_("The SVG file declares a DOCTYPE or entities; logos may not. Save it as plain SVG."))

    def refuse_pi(target, _data):
        raise LogoError(N_("The SVG file holds a processing instruction (%(what)s); logos may not."), what=target[:40])

    def start(name, attrs):
        ns, _, local = name.rpartition(" ")
        if ns != SVG_NS or local not in SVG_ELEMENTS:
            raise LogoError(N_("The SVG file holds the element <%(element)s>, which logos may not use (no scripts, "
                               "embedded pages, images or styles)."), element=local[:40])
        if depth[0] == 0 and local != "svg":
            raise LogoError(N_("This file is neither a PNG nor an SVG image. Upload the logo as PNG or SVG."))
        depth[0] += 1
        kept = []
        for key, value in attrs.items():
            a_ns, _, a_local = key.rpartition(" ")
            if a_ns not in ("", XLINK_NS) or a_local not in SVG_ATTRIBUTES or (a_ns == XLINK_NS and a_local != "href"):
                raise LogoError(N_("The SVG file uses the attribute %(attribute)s, which logos may not use (no "
                                   "scripts, event handlers or styles)."), attribute=a_local[:40])
            if a_local == "href" and not re.fullmatch(r"#[A-Za-z0-9_.-]+", value.strip()):
                raise LogoError(N_("The SVG file links to %(target)s; a logo may only refer to parts of itself."),
                                target=value.strip()[:80])
            if _URL.search(_LOCAL_URL.sub("", value)):
                raise LogoError(N_("The SVG file links to %(target)s; a logo may only refer to parts of itself."),
                                target=value.strip()[:80])
            kept.append(("href" if a_local == "href" else a_local, value))
        attributes = "".join(f" {k}={quoteattr(v)}" for k, v in kept)
        xmlns = f' xmlns="{SVG_NS}"' if local == "svg" and depth[0] == 1 else ""
        out.append(f"<{local}{xmlns}{attributes}>")

    def end(name):
        depth[0] -= 1
        out.append(f"</{name.rpartition(' ')[2]}>")

    def text(content):
        if depth[0] > 0:
            out.append(escape(content))

    parser.StartDoctypeDeclHandler = refuse_doctype
    parser.EntityDeclHandler = refuse_doctype
    parser.UnparsedEntityDeclHandler = refuse_doctype
    parser.ExternalEntityRefHandler = lambda *args: refuse_doctype()
    parser.ProcessingInstructionHandler = refuse_pi
    parser.StartElementHandler = start
    parser.EndElementHandler = end
    parser.CharacterDataHandler = text
    try:
        parser.Parse(data, True)
    except xml.parsers.expat.ExpatError as exc:
        raise LogoError(N_("The SVG file is not well-formed XML (line %(line)s). Export it again."),
                        line=exc.lineno) from None
    if not out:
        raise LogoError(N_("This file is neither a PNG nor an SVG image. Upload the logo as PNG or SVG."))
    return ('<?xml version="1.0" encoding="UTF-8"?>\n' + "".join(out)).encode()
