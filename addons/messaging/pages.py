"""Dashboard pages of the messaging addon (filled in below)."""

ROUTES = []
