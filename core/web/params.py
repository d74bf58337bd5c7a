"""Numbers in requests (ids in paths and forms, counts in query strings), read one way.

A number from a client is ASCII digits and nothing else: ``str.isdigit`` alone also takes
``"²"`` and other scripts' digits, which ``int()`` then refuses (a 500) or reads. An id has
at most :data:`ID_DIGITS` digits, so it always fits PostgreSQL's ``bigint``: a longer one
names nothing, and is answered like an id that is not there instead of failing in the query.
"""

from __future__ import annotations

from .problem import Problem
from ..i18n import N_

ID_DIGITS = 18  # bigint holds up to 9,223,372,036,854,775,807 (19 digits): every 18-digit number fits


def is_digits(value) -> bool:
    """Whether ``value`` is a string of ASCII digits (at least one)."""
    return isinstance(value, str) and value.isascii() and value.isdigit()


def number_or_none(value, digits: int = ID_DIGITS) -> int | None:
    """The number ``value`` spells with at most ``digits`` ASCII digits, else ``None``."""
    return int(value) if is_digits(value) and len(value) <= digits else None


def parse_id(value, what: str = "item", field: str | None = None) -> int:
    """The id ``value`` spells: a path's or a form's id answers 404 ``not-found`` ("There is no such
    <what> here.", the answer for an id that does not exist); a query string's filter (``field``
    given) answers 400 ``invalid-parameter`` ("<field> must be a number.")."""
    number = number_or_none(value)
    if number is None:
        if field is not None:
            raise Problem(400, "invalid-parameter", N_("%(field)s must be a number."), args={"field": field})
        raise Problem(404, "not-found", N_("There is no such %(what)s here."), args={"what": what})
    return number


def whole_number(value, message: str, digits: int, low: int = 0, high: int | None = None,
                 args: dict | None = None) -> int:
    """A count from a query string, at most ``digits`` digits long, from ``low`` to ``high``;
    otherwise 400 ``invalid-parameter`` with ``message`` (an ``N_()`` msgid with ``args``)."""
    number = number_or_none(value, digits)
    if number is None or number < low or (high is not None and number > high):
        raise Problem(400, "invalid-parameter", message, args=args)
    return number
