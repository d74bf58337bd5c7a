"""The platform this process serves (set by ``smsgw_configure``), for hooks that are given none."""

PLATFORM: list = [None]
