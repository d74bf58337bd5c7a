"""How the companion talks to the phone's radio: Termux:API on a real phone, or a simulator."""

from __future__ import annotations


def make_backend(name: str, **options):
    if name == "termux":
        from .termux import TermuxBackend

        return TermuxBackend(**options)
    if name == "simulator":
        from .simulator import SimulatorBackend

        return SimulatorBackend(**options)
    raise ValueError(f"unknown backend {name!r}: use termux or simulator")
