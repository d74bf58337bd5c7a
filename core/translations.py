"""Translators' tooling: ``smsgw language add CODE`` starts a catalogue for a new language.

The catalogue is ``locale/<code>/LC_MESSAGES/smsgw.po``, made from the template ``locale/smsgw.pot``
that ``make messages`` extracts from the code, with the language's plural rule from CLDR (Babel).
Nothing else is needed: the server finds every catalogue under ``locale/`` at start-up, and the
language menu offers it from then on (untranslated messages show in English until they are done).
See ``locale/README.md``.
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

from babel import Locale, UnknownLocaleError
from babel.messages.pofile import read_po, write_po

DOMAIN = "smsgw"
# A language (``it``), optionally with a region or script (``pt_BR``, ``zh_Hant``): the folder name.
CODE = re.compile(r"^[a-z]{2,3}(?:_[A-Z][a-z]{3})?(?:_(?:[A-Z]{2}|\d{3}))?$")


class LanguageError(ValueError):
    pass


def add_language(code: str, locale_dir: Path) -> Path:
    """Create the catalogue of ``code`` from the template; its path. Refuses an existing one."""
    if not CODE.match(code):
        raise LanguageError(f"{code!r} is not a language code like it, pt_BR or zh_Hant")
    try:
        locale = Locale.parse(code)
    except (ValueError, UnknownLocaleError):
        raise LanguageError(f"{code!r} is not a language Babel (CLDR) knows") from None
    locale_dir = Path(locale_dir)
    template = locale_dir / f"{DOMAIN}.pot"
    if not template.is_file():
        raise LanguageError(f"{template} is missing: run `make messages` first")
    target = locale_dir / code / "LC_MESSAGES" / f"{DOMAIN}.po"
    if target.exists():
        raise LanguageError(f"{target} already exists: update it with `make messages`")
    with template.open("rb") as fh:
        catalog = read_po(fh, locale=locale)
    catalog.locale = locale
    catalog.revision_date = dt.datetime.now(dt.timezone.utc)
    catalog.fuzzy = False
    target.parent.mkdir(parents=True)
    with target.open("wb") as fh:
        write_po(fh, catalog, width=100)
    return target
