"""Compat addon: the SMS Gateway for Android third-party API (``/3rdparty/v1``) on top of ours."""
