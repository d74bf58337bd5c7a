"""Cookies addon: the cookie banner and its recorded consent (:mod:`.consent`), and first-party
analytics of the public pages, counted only with that consent (:mod:`.analytics`)."""
