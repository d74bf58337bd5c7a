"""The platform this process runs (set by ``smsgw_configure``)."""

_platform = None


def set_platform(platform) -> None:
    global _platform
    _platform = platform


def platform():
    return _platform


def role_prefix() -> str:
    return _platform.roles.prefix
