"""How the platform's log lines look, made cheaply: the web process writes one per request.

``LineFormatter`` gives ``2026-12-07 12:00:00,123 INFO smsgw.access: ...`` like the standard
formatter, but formats a second's date and time once, not once per line. :func:`configure` also
tells :mod:`logging` not to look up each call's source file and line (the lines do not show them;
the Logging HOWTO's "Optimization" section names this switch).
"""

from __future__ import annotations

import logging
import time

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class LineFormatter(logging.Formatter):
    def __init__(self):
        super().__init__(FORMAT)
        self._second = None
        self._text = ""

    def formatTime(self, record, datefmt=None):
        second = int(record.created)
        if second != self._second:  # a race between threads writes the same text: harmless
            self._text, self._second = time.strftime("%Y-%m-%d %H:%M:%S", self.converter(second)), second
        return f"{self._text},{int(record.msecs):03d}"


def configure(verbose: bool = False) -> None:
    """What ``logging.basicConfig`` does (a stderr handler on the root logger, unless it has one
    already), with :class:`LineFormatter`."""
    logging._srcfile = None
    root = logging.getLogger()
    if root.handlers:
        return
    handler = logging.StreamHandler()
    handler.setFormatter(LineFormatter())
    root.addHandler(handler)
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
