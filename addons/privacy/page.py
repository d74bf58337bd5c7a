"""*Account → Privacy*: one page, one section per feature (export, deletion, retention, ...).

A feature module that has something to show there defines ``SECTION``, a :class:`Section`; the
page loads each section the signed-in person may see, in ``order``, and renders its template.
A form posts to the page with ``section=<key>``: that section's ``post`` handles it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Awaitable, Callable

from core.i18n import N_
from core.web.base import PageHandler
from core.web.menu import ACCOUNT, MenuItem
from core.web.problem import Problem

SELF = "privacy:self"  # a member's own rights: export their data, delete their account, object, restrict
MANAGE = "privacy:manage"  # the workspace's: retention, workspace export, deleting the organisation

# Every member reaches their own privacy rights (and the workspace's settings, if they manage them).
MENU = [MenuItem(N_("Privacy"), "/account/privacy", SELF, 89, ACCOUNT)]


def permissions(register) -> None:
    register(SELF, "Use your own privacy rights: export your data, delete your account, object, restrict",
             ["customer", "user"])
    register(MANAGE, "Manage the workspace's privacy: message-text retention, workspace export and deletion",
             ["customer"], scope=True)


@dataclass(frozen=True)
class Section:
    """One part of the privacy page.

    :param key: names the section in forms (``section=<key>``) and in the page (``id``).
    :param order: place on the page, smallest first.
    :param template: a template (under the addon's ``templates/``) rendered with ``ctx``, the dict
        ``load`` returned, plus ``errors`` (field -> message) after a refused form.
    :param load: ``async load(handler) -> dict | None``; ``None`` hides the section (not for this person).
    :param post: ``async post(handler) -> dict | None``: handle this section's form; a dict of
        errors (field -> message) shows the page again with them, ``None`` goes back to the page.
    """

    key: str
    order: int
    template: str
    load: Callable[..., Awaitable[dict | None]]
    post: Callable[..., Awaitable[dict | None]] | None = None


def sections() -> list[Section]:
    from .hooks import FEATURES

    found = [feature.SECTION for feature in FEATURES if getattr(feature, "SECTION", None)]
    return sorted(found, key=lambda s: (s.order, s.key))


class PrivacyPage(PageHandler):
    permission = SELF

    async def show(self, errors_for: str | None = None, errors: dict | None = None, status: int = 200):
        shown = []
        for section in sections():
            ctx = await section.load(self)
            if ctx is not None:
                shown.append((section, {**ctx, "errors": errors if section.key == errors_for else {}}))
        self.set_status(status)
        self.render("privacy/account.html", sections=shown)

    async def get(self):
        await self.show()

    async def post(self):
        key = self.get_body_argument("section", "")
        section = next((s for s in sections() if s.key == key and s.post is not None), None)
        if section is None or await section.load(self) is None:
            raise Problem(400, "bad-request", N_("This form is not on your privacy page; reload the "
                                                 "page and try again."))
        errors = await section.post(self)
        if errors:
            await self.show(key, errors, 422)
            return
        if not self._finished:
            self.redirect(f"/account/privacy#{key}", status=303)


ROUTES = [(r"/account/privacy", PrivacyPage)]
