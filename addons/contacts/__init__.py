"""Contacts addon: names for numbers, groups to send to, message templates and saved replies."""
