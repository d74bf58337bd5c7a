"""Problem titles for the extractor: never imported.

``core/web/problem.py`` keeps the titles in ``TITLES`` as plain strings and
``core/templates/error.html`` renders them with ``_(problem.title)``, which the
extractor cannot follow. They are listed here (``N_`` is Babel's default
no-op marker) so that ``make messages`` keeps them in the catalogues;
``tests/test_i18n.py`` fails if this list and ``TITLES`` drift apart.
"""


def N_(message):
    return message


PROBLEM_TITLES = [
    N_("Bad request"),
    N_("Unauthorized"),
    N_("Forbidden"),
    N_("Not found"),
    N_("Method not allowed"),
    N_("Conflict"),
    N_("Payload too large"),
    N_("Unsupported media type"),
    N_("Unprocessable content"),
    N_("Too many requests"),
    N_("Internal server error"),
    N_("Service unavailable"),
    N_("Error"),
]
