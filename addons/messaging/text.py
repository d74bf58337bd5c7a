"""SMS text: encoding detection (GSM-7 or UCS-2), segment counting, and ``{column}`` templates."""

from __future__ import annotations

import functools
import re
from core.i18n import N_
from core.web.problem import Refusal

GSM7_BASIC = set(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà")
GSM7_EXTENDED = set("^{}\\[~]|€\f")
MAX_SEGMENTS = 10
# No text longer than this fits in MAX_SEGMENTS segments in any encoding (every character is at
# least one unit, and GSM-7 fits the most: 153 a segment): longer texts are refused unwalked.
MAX_CHARS = MAX_SEGMENTS * 153


# A regular expression and str.count, not a Python loop over the characters: texts are walked in C.
_NOT_GSM7 = re.compile("[^" + "".join(sorted(re.escape(c) for c in GSM7_BASIC | GSM7_EXTENDED)) + "]")


def encoding(text: str) -> str:
    return "UCS-2" if _NOT_GSM7.search(text) else "GSM-7"


def units(text: str, enc: str) -> int:
    if enc == "GSM-7":
        return len(text) + sum(map(text.count, GSM7_EXTENDED))  # extended characters take two
    return len(text.encode("utf-16-le")) // 2  # characters outside the BMP take two


def segments(text: str, enc: str | None = None) -> int:
    enc = enc or encoding(text)
    n = units(text, enc)
    single, multi = (160, 153) if enc == "GSM-7" else (70, 67)
    if n <= single:
        return 1
    return -(-n // multi)


def describe(text: str) -> dict:
    if len(text) > MAX_CHARS:
        # Too long whatever it holds: describe the first MAX_CHARS + 1 characters and count the rest
        # as one unit each (a lower bound), instead of walking a text of any size character by character.
        head = text[:MAX_CHARS + 1]
        enc = encoding(head)
        n = units(head, enc) + len(text) - len(head)
        return {"encoding": enc, "segments": -(-n // (153 if enc == "GSM-7" else 67)), "length": n}
    enc = encoding(text)
    return {"encoding": enc, "segments": segments(text, enc), "length": units(text, enc)}


class TemplateError(Refusal):
    """A template that cannot be filled in; the message says why, for the person who wrote it."""


# "{{" and "}}" are braces; "{...}" a placeholder; any other brace stands alone.
_TEMPLATE_TOKEN = re.compile(r"\{\{|\}\}|\{([^{}]*)\}|[{}]")


def fill(template: str, values: dict[str, str], limit: int = MAX_CHARS) -> str:
    """``template`` with each ``{column}`` replaced by ``values[column]`` (names compared trimmed and
    case-insensitively; ``values`` has lower-case keys) and ``{{``/``}}`` by a brace.

    Nothing else is interpreted: a format spec, conversion, attribute or index (``{a:>9}``,
    ``{a!r}``, ``{a.b}``, ``{a[0]}``), which ``str.format`` would evaluate, is refused like an
    unknown column. The length is added up before the text is joined, so a template that would
    fill in to more than ``limit`` characters is refused without being built.
    """
    if len(template) > 4 * limit:  # placeholders are short: a longer template is not a message
        raise TemplateError(N_("the text is too long (more than %(limit)s characters)"), {"limit": limit})
    compiled = _compile(template)
    if isinstance(compiled, TemplateError):
        raise compiled
    pattern, names, keys, literal_size = compiled
    try:
        args = [values[key] for key in keys]
    except KeyError as missing:
        name = names[keys.index(missing.args[0])]
        shown = "{" + name[:40] + ("…" if len(name) > 40 else "") + "}"
        if any(c in name for c in ":!.[]"):
            raise TemplateError(N_("%(shown)s is not allowed: use only {column} placeholders, without "
                                   "formatting, attributes or indexes"), {"shown": shown}) from None
        raise TemplateError(N_("the text uses %(shown)s, a variable that has no column; use only {column} "
                               "placeholders"), {"shown": shown}) from None
    if literal_size + sum(map(len, args)) > limit:
        raise TemplateError(N_("the text is too long once the columns are filled in (more than %(limit)s "
                               "characters)"), {"limit": limit})
    return pattern.format(*args)  # only "{0}", "{1}"...: fields _compile wrote, with no format spec


@functools.lru_cache(maxsize=64)
def _compile(template: str) -> tuple[str, tuple[str, ...], tuple[str, ...], int] | TemplateError:
    """``(pattern, names, keys, literal_size)``: ``pattern`` has a numbered field for each placeholder
    (as written in ``names``, as looked up in ``keys``) and its literal text with braces doubled. Or
    the message of why ``template`` is wrong. Cached: the rows of a file mostly share one template."""
    pattern, names, literal_size, pos = [], [], 0, 0
    for m in _TEMPLATE_TOKEN.finditer(template):
        token, name = m.group(0), m.group(1)
        literal = template[pos:m.start()]
        if name is not None:
            pattern += (literal, "{", str(len(names)), "}")
            names.append(name)
        elif token in ("{{", "}}"):
            pattern += (literal, token)
            literal_size += 1
        else:
            return TemplateError(N_("the text has a single '%(brace)s': write {{ or }} for a brace, and only "
                                    "{column} placeholders"), {"brace": token})
        literal_size += len(literal)
        pos = m.end()
    pattern.append(template[pos:])
    keys = tuple(name.strip().lower() for name in names)
    return "".join(pattern), tuple(names), keys, literal_size + len(template) - pos
