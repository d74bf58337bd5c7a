"""The SMS gateway kernel: configuration, database and tenancy, addons, web, tasks.

Nothing in this package knows about SMS: devices, messaging and the rest are
addons that plug in through the hooks in :mod:`core.hookspecs`.
"""

__version__ = "0.1.0"
