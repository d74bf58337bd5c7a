"""The platform's log lines: the cheap formatter writes exactly what the standard one would."""

import logging

from core import logformat


def record(created: float, msg: str = "200 POST a.localhost /api/device/v1/reports 1.2ms") -> logging.LogRecord:
    rec = logging.LogRecord("smsgw.access", logging.INFO, __file__, 1, msg, (), None)
    rec.created = created
    rec.msecs = (created - int(created)) * 1000
    return rec


def test_line_formatter_matches_the_standard_formatter_across_seconds():
    ours, standard = logformat.LineFormatter(), logging.Formatter(logformat.FORMAT)
    # within one second, across a second, back to an earlier second, and a millisecond edge
    for created in (1796640000.001, 1796640000.999, 1796640001.5, 1796640000.25, 1796726399.9995):
        rec = record(created)
        assert ours.format(rec) == standard.format(rec)


def test_configure_keeps_handlers_that_are_there_already():
    root = logging.getLogger()
    before = list(root.handlers)
    marker = logging.NullHandler()
    root.addHandler(marker)
    try:
        formatter = marker.formatter
        logformat.configure()
        assert root.handlers == before + [marker]  # nothing added, nothing replaced
        assert marker.formatter is formatter
    finally:
        root.removeHandler(marker)
