"""Messaging addon: the messages table is the queue of record."""
