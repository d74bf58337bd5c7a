"""Phone numbers: normalised to E.164 with ``phonenumbers`` and the tenant's default region."""

from __future__ import annotations

import phonenumbers


class PhoneError(ValueError):
    pass


def normalise(raw, region: str) -> str:
    if not isinstance(raw, str):
        raise PhoneError("must be a phone number as text")
    raw = raw.strip()
    if not raw or len(raw) > 32:
        raise PhoneError("must be a phone number of at most 32 characters")
    try:
        number = phonenumbers.parse(raw, region or "US")
    except phonenumbers.NumberParseException:
        raise PhoneError("is not a phone number") from None
    if not phonenumbers.is_valid_number(number):
        raise PhoneError("is not a valid phone number" + ("" if raw.startswith("+") else
                                                          f" in region {region} (use +<country code>)"))
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def try_normalise(raw, region: str) -> str | None:
    try:
        return normalise(raw, region)
    except PhoneError:
        return None
