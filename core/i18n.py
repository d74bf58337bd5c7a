"""Translations: gettext catalogues from ``locale/`` (and addons'), negotiated per request.

Translators edit ``locale/<lang>/LC_MESSAGES/*.po``; we compile them in memory
with Babel at start-up, so a fixed catalogue only needs a restart, not a build.
"""

from __future__ import annotations

import io
import logging
from pathlib import Path

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import NullTranslations, Translations

log = logging.getLogger(__name__)

def N_(message: str) -> str:
    """Mark a string for the catalogue where it is defined; it is translated where it is shown."""
    return message


LANGUAGE_NAMES = {"en": "English", "de": "Deutsch", "fr": "Français", "es": "Español"}


def _load_po(path: Path) -> Translations:
    with path.open("rb") as fh:
        catalog = read_po(fh)
    buf = io.BytesIO()
    write_mo(buf, catalog)
    buf.seek(0)
    return Translations(buf)


class Catalogues:
    """All languages we ship, merged from the core and addon ``locale/`` directories."""

    def __init__(self, locale_dirs: list[Path], default: str = "en"):
        self.default = default
        self.translations: dict[str, Translations] = {}
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

    def get(self, lang: str) -> NullTranslations:
        return self.translations.get(lang) or NullTranslations()

    def negotiate(self, cookie: str | None, accept_language: str | None) -> str:
        """The cookie wins if it names a language we ship; then Accept-Language by q; then default."""
        if cookie and cookie in self.languages:
            return cookie
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
        trans = self.get(lang)

        def _(message: str, **kwargs) -> str:
            text = trans.gettext(message)
            return text % kwargs if kwargs else text

        def ngettext(singular: str, plural: str, n: int, **kwargs) -> str:
            text = trans.ngettext(singular, plural, n)
            return text % dict(kwargs, num=n)

        return _, ngettext
