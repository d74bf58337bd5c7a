"""Translations: gettext catalogues from ``locale/`` (and addons'), negotiated per request.

Translators edit ``locale/<lang>/LC_MESSAGES/*.po`` (see ``locale/README.md``); we compile them in
memory with Babel at start-up, so a fixed catalogue only needs a restart, not a build.

Each language's ``_``/``ngettext`` pair and its Babel formatters are made once and kept
(:meth:`Catalogues.gettext_for`, :meth:`Catalogues.formats`): a request that needs a translation
(a page, a mail, an error's problem+json) looks them up, it never reads or compiles a catalogue.

Two pseudo-locales help find text that is not marked for translation (``SMSGW_PSEUDO_LOCALES=1``):
``qps-ploc`` shows every translated string accented and in brackets (``[Ŝéñð]``), ``qps-plocm``
the same right to left (``dir="rtl"``). Text a page shows plainly in them was never translated.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
import io
import logging
import re
from pathlib import Path

from babel import Locale, UnknownLocaleError
from babel import dates as babel_dates
from babel import numbers as babel_numbers
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import NullTranslations, Translations

log = logging.getLogger(__name__)

def N_(message: str) -> str:
    """Mark a string for the catalogue where it is defined; it is translated where it is shown."""
    return message


@dataclass(frozen=True)
class Moment:
    """A time inside a :class:`Said`: English (an API answer) writes it in UTC, naming UTC; a page
    in the reader's own zone (``say(..., moment=...)``)."""

    at: dt.datetime
    fmt: str = "%H:%M"

    def __str__(self) -> str:
        return self.at.astimezone(dt.timezone.utc).strftime(self.fmt) + " UTC"


class Said(str):
    """English text that remembers its msgid and arguments (or the parts it was joined from), so a
    page shows it in the reader's language (``say()`` in templates) while an API answer, which
    serialises it as a plain string, carries the English."""

    def __new__(cls, msgid: str, args: dict | None = None, parts: list | None = None):
        text = msgid % args if args else msgid
        said = super().__new__(cls, text)
        said.msgid, said.args = msgid, dict(args or {})
        said.parts = parts if parts is not None else [said]
        return said

    @classmethod
    def joined(cls, parts: list, separator: str = "; ") -> "Said":
        parts = [p if isinstance(p, Said) else Said(p) for p in parts]
        return cls(separator.join(parts), parts=parts)

    def __reduce__(self):  # pickled as what it is made of (huey, caches)
        return (Said, (self.msgid, self.args or None, None if self.parts[0] is self else self.parts))


def say(gettext, text, separator: str = "; ", moment=None) -> str:
    """``text`` in ``gettext``'s language: a :class:`Said` part by part, another string as a msgid.
    ``moment(m)`` writes a :class:`Moment` argument (the reader's zone); without it, UTC."""
    if isinstance(text, Said):
        return separator.join(gettext(p.msgid, **{k: moment(v) if moment and isinstance(v, Moment) else v
                                                  for k, v in p.args.items()}) for p in text.parts)
    return gettext(text) if text else ""


# The product's name is a name, not a word: messages take it as %(product)s, never translated. It is
# the brand's (core/brand.py: SMSGW_PRODUCT_NAME, or a workspace's own).

PSEUDO = "qps-ploc"        # accented, bracketed: finds text that is not translated
PSEUDO_RTL = "qps-plocm"   # the same, right to left: checks the mirrored layout
PSEUDO_LOCALES = (PSEUDO, PSEUDO_RTL)
RTL_LANGUAGES = frozenset({"ar", "fa", "he", "ur", "yi", "ps", "sd", "ug", PSEUDO_RTL})

# Letters a pseudo-locale shows instead of the ASCII ones (same length, still readable).
_ACCENTED = str.maketrans(
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ",
    "ȧƀçđéƒĝĥíĵķĺɱñöƥʠŕšţüṽŵẋýžÅƁÇĐÉƑĜĤÎĴĶĹṀÑÖƤꝖŔŠŢÜṼŴẊÝŽ")
# What must stay as it is inside a message: placeholders, HTML tags and entities, URLs.
_KEEP = re.compile(r"%\(\w+\)[-#0 +]*\d*(?:\.\d+)?[diouxXeEfFgGcrsa]|%[-#0 +]*\d*[diouxXeEfFgGcrsa%]"
                   r"|\{\w*\}|<[^>]*>|&#?\w+;|https?://\S+")


def pseudo(text: str) -> str:
    """``text`` as the pseudo-locales show it: letters accented, placeholders and markup kept, in brackets."""
    if not text:
        return text
    out, last = [], 0
    for m in _KEEP.finditer(text):
        out.append(text[last:m.start()].translate(_ACCENTED))
        out.append(m.group(0))
        last = m.end()
    out.append(text[last:].translate(_ACCENTED))
    return "[" + "".join(out) + "]"


class PseudoTranslations(NullTranslations):
    """Every message, translated or not, in :func:`pseudo` form."""

    def gettext(self, message):
        return pseudo(message)

    def ngettext(self, singular, plural, n):
        return pseudo(singular if n == 1 else plural)


def language_name(code: str) -> str:
    """A language's own name for itself (``Deutsch``, ``Italiano``), for the language menus."""
    if code in PSEUDO_LOCALES:
        return "Pseudo (RTL)" if code == PSEUDO_RTL else "Pseudo"
    try:
        name = Locale.parse(code.replace("-", "_")).get_display_name(code.replace("-", "_"))
    except (ValueError, UnknownLocaleError):
        return code
    return name[:1].upper() + name[1:] if name else code


def babel_locale(lang: str) -> Locale:
    """The Babel locale that formats dates and numbers for ``lang`` (English for the pseudo-locales)."""
    try:
        return Locale.parse("en" if lang in PSEUDO_LOCALES else lang.replace("-", "_"))
    except (ValueError, UnknownLocaleError):
        return Locale.parse("en")


class Formats:
    """Dates, times, numbers and money written the way ``lang`` writes them (Babel, CLDR data)."""

    def __init__(self, lang: str):
        self.locale = babel_locale(lang)
        # A pseudo-locale shows a date's words (month names) transformed too, as it shows every text.
        self._words = pseudo if lang in PSEUDO_LOCALES else (lambda text: text)

    def date(self, value: dt.date | dt.datetime, format: str = "medium") -> str:
        return self._words(babel_dates.format_date(value, format=format, locale=self.locale))

    def datetime(self, value: dt.datetime, format: str = "medium", tzinfo=None) -> str:
        return self._words(babel_dates.format_datetime(value, format=format, tzinfo=tzinfo, locale=self.locale))

    def day(self, value: dt.date | str) -> str:
        """A day without its year, as the locale writes it ("Dec 7", "7. Dez."): a chart's labels."""
        if isinstance(value, str):
            value = dt.date.fromisoformat(value[:10])
        return self._words(babel_dates.format_skeleton("MMMd", value, locale=self.locale))

    def number(self, value) -> str:
        return babel_numbers.format_decimal(value, locale=self.locale)

    def percent(self, value, format: str | None = None) -> str:
        return babel_numbers.format_percent(value, format=format, locale=self.locale)

    def currency(self, value, currency: str) -> str:
        return babel_numbers.format_currency(value, currency, locale=self.locale)


def _load_po(path: Path) -> Translations:
    with path.open("rb") as fh:
        catalog = read_po(fh)
    buf = io.BytesIO()
    write_mo(buf, catalog)
    buf.seek(0)
    return Translations(buf)


class Catalogues:
    """All languages we ship, merged from the core and addon ``locale/`` directories."""

    def __init__(self, locale_dirs: list[Path], default: str = "en", pseudo_locales: bool = False):
        self.default = default
        self.translations: dict[str, NullTranslations] = {}
        for directory in locale_dirs:
            directory = Path(directory)
            if not directory.is_dir():
                continue
            for lang_dir in sorted(p for p in directory.iterdir() if p.is_dir()):
                for po in sorted((lang_dir / "LC_MESSAGES").glob("*.po")):
                    trans = _load_po(po)
                    if lang_dir.name in self.translations:
                        self.translations[lang_dir.name].merge(trans)
                    else:
                        self.translations[lang_dir.name] = trans
        self.languages = sorted(set(self.translations) | {default})
        # The pseudo-locales are chosen only by name (cookie, ?lang=), never offered or negotiated.
        self.pseudo = PSEUDO_LOCALES if pseudo_locales else ()
        for code in self.pseudo:
            self.translations[code] = PseudoTranslations()
        self._gettext: dict[str, tuple] = {}
        self._formats: dict[str, Formats] = {}

    def get(self, lang: str) -> NullTranslations:
        return self.translations.get(lang) or NullTranslations()

    def known(self, lang: str | None) -> bool:
        """Whether ``lang`` (exactly our code) is a language pages can be shown in."""
        return bool(lang) and (lang in self.languages or lang in self.pseudo)

    def resolve(self, *choices: str | None) -> str:
        """The first of ``choices`` we ship (a person's own, then their workspace's ...), else the default."""
        for choice in choices:
            if self.known(choice):
                return choice
        return self.default

    def direction(self, lang: str) -> str:
        """``rtl`` or ``ltr``: the writing direction of ``lang``, for ``<html dir>``."""
        return "rtl" if lang.split("-")[0] in RTL_LANGUAGES or lang in RTL_LANGUAGES else "ltr"

    def negotiate(self, cookie: str | None, accept_language: str | None, *chosen: str | None) -> str:
        """The cookie wins if it names a language we ship; then the ``chosen`` ones in order (a
        signed-in person's own setting, their workspace's default language) if we ship them; then
        Accept-Language by q; then the platform default."""
        if cookie and self.known(cookie):
            return cookie
        for choice in chosen:
            if choice and choice in self.languages:
                return choice
        candidates = []
        for i, part in enumerate((accept_language or "").split(",")[:20]):
            piece = part.strip().split(";")
            tag = piece[0].strip().lower()
            q = 1.0
            for param in piece[1:]:
                param = param.strip()
                if param.startswith("q="):
                    try:
                        q = float(param[2:])
                    except ValueError:
                        q = 0.0
            if tag and q > 0:
                candidates.append((-q, i, tag))
        for _, _, tag in sorted(candidates):
            for option in (tag, tag.split("-")[0]):
                if option in self.languages:
                    return option
        return self.default

    def gettext_for(self, lang: str):
        """``(_, ngettext)`` of ``lang``, made once per language: ``_(msgid, **kw)`` formats ``%(kw)s``;
        ``ngettext(singular, plural, n, **kw)`` also gives ``%(num)d``."""
        pair = self._gettext.get(lang)
        if pair is None:
            pair = self._gettext[lang] = self._make_gettext(self.get(lang))
        return pair

    @staticmethod
    def _make_gettext(trans):
        def _(message: str, **kwargs) -> str:
            text = trans.gettext(message)
            return text % kwargs if kwargs else text

        def ngettext(singular: str, plural: str, n: int, **kwargs) -> str:
            text = trans.ngettext(singular, plural, n)
            return text % dict(kwargs, num=n)

        return _, ngettext

    def formats(self, lang: str) -> Formats:
        """Babel formatters for ``lang``, made once per language."""
        found = self._formats.get(lang)
        if found is None:
            found = self._formats[lang] = Formats(lang)
        return found
