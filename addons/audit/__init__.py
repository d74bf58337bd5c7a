"""Audit addon: an append-only trail that PostgreSQL itself protects."""
