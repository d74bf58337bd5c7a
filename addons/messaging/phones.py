"""Phone numbers: normalised to E.164 with ``phonenumbers`` and the tenant's default region."""

from __future__ import annotations

from functools import lru_cache

import phonenumbers

from core.i18n import N_
from core.web.problem import Refusal


class PhoneError(Refusal):
    """Not a phone number: a whole sentence naming the number as typed (``%(number)s``)."""


def normalise(raw, region: str) -> str:
    if not isinstance(raw, str):
        raise PhoneError(N_("A phone number must be text."))
    raw = raw.strip()
    if not raw:
        raise PhoneError(N_("The phone number is empty."))
    if len(raw) > 32:
        raise PhoneError(N_("“%(number)s” is too long for a phone number (at most 32 characters)."),
                         {"number": raw[:40]})
    phone, error = _parse(raw, region or "US")
    if error:
        raise PhoneError(error, {"number": raw, "region": region or "US"})
    return phone


@lru_cache(maxsize=16384)
def _parse(raw: str, region: str) -> tuple[str | None, str | None]:
    """``(e164, None)`` or ``(None, reason)``. Parsing and validating costs ~50 µs a number and a
    business sends to the same customers again and again: the answers are kept (pure function
    of its arguments and the phonenumbers metadata; 16 Ki entries, about 5 MB per process)."""
    try:
        number = phonenumbers.parse(raw, region)
    except phonenumbers.NumberParseException:
        return None, N_("“%(number)s” is not a phone number.")
    if not phonenumbers.is_valid_number(number):
        return None, (N_("“%(number)s” is not a valid phone number.") if raw.startswith("+") else
                      N_("“%(number)s” is not a valid phone number in region %(region)s (use +<country code>)."))
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164), None


def try_normalise(raw, region: str) -> str | None:
    try:
        return normalise(raw, region)
    except PhoneError:
        return None
