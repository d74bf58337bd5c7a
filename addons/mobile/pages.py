"""Dashboard: Devices → Connect the Android app."""

ROUTES = []
