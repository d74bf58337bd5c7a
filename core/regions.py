"""Countries a workspace can read phone numbers in (its *default country*, ``tenant.default_region``).

A number written without ``+<country code>`` is read as a number of the workspace's country: in a
German workspace ``01701234567`` is ``+491701234567``. The choices are the regions the phone-number
library knows (ISO 3166 alpha-2 codes), named in the reader's language.
"""

from __future__ import annotations

from functools import lru_cache

import babel
import phonenumbers


def valid_region(code: str) -> bool:
    return code in phonenumbers.SUPPORTED_REGIONS


def names_language(lang: str) -> str:
    """The language :func:`regions` names countries in for ``lang``: itself, or English where Babel
    does not know it (a page marks those names ``lang="en"``)."""
    try:
        babel.Locale.parse(lang)
        return lang
    except (ValueError, babel.UnknownLocaleError):
        return "en"


@lru_cache(maxsize=16)
def regions(lang: str) -> tuple[tuple[str, str], ...]:
    """``(code, name)`` of every region, by name in ``lang`` (English where ``lang`` is unknown)."""
    try:
        names = babel.Locale.parse(lang).territories
    except (ValueError, babel.UnknownLocaleError):
        names = babel.Locale("en").territories
    return tuple(sorted(((code, names.get(code, code)) for code in phonenumbers.SUPPORTED_REGIONS),
                        key=lambda item: item[1]))
