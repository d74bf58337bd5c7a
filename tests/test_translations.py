"""Translation as a workflow (issue 24): every word a person reads is translated.

* the pseudo-locale renders every page and every mail with each translated string changed
  (``[Ŝéñð]``): visible text that stays plain was never marked for translation;
* mails go out in the recipient's language (their own, else the workspace's, else the platform's);
* API problems answer ``title``/``detail`` in the caller's ``Accept-Language``;
* plural forms, and adding a language with the documented command.
"""

from __future__ import annotations

import email
import email.policy
import re
import secrets
from html.parser import HTMLParser

import pytest

from core.db import tenant_transaction
from core.i18n import PSEUDO, PSEUDO_RTL, Catalogues, pseudo
from core.users import User
from tests.support.identity import (OWNER_PASSWORD, add_user, admin_sign_in, fetch_xsrf, mails_to, owner_email,
                                    post_form, sign_in)
from tests.support.phones import api_client
from tests.support.resellers import partner_sign_in, reseller_of
from tests.support.site import populated_workspace, send_every_mail
from tests.test_browser_layout import EXPECTED_STATUS, PAGES
from tests.test_i18n import LOCALE, SHIPPED

# -- what may stay plain in the pseudo-locale -------------------------------------------------------
# Not words of ours: the product's name, units and standards, codes people type, the data the fixture
# made (names, numbers, message texts), and the language menu (each language's own name).
ALLOWED = {
    "SMS Gateway", "SMS", "API", "CSV", "JSON", "UTC", "URL", "HTTP", "HTTPS", "SIM", "GSM", "UCS", "ISO",
    "PDF", "VAT", "ID", "OK", "Stripe", "Android", "iOS", "Bearer", "Basic", "Authorization", "Idempotency-Key",
    "EUR", "USD", "GBP", "CHF", "E.164", "webhook-id", "webhook-signature", "webhook-timestamp",
    "English", "Deutsch", "Français", "Español", "Italiano", "Pseudo", "EN", "DE", "FR", "ES", "IT", "RTL",
    "QPS-PLOC", "QPS-PLOCM",
}
# Identifiers shown as they are, like error codes: permission scopes, addon names, audit actions,
# a message event's source, plan codes.
IDENTIFIERS = re.compile(r"\(\d{4}-\d\d-\d\d to \d{4}-\d\d-\d\d\)|\b[a-z_]+:[a-z_0-9]+\b|\b[A-Z]{2,}-\d+\b|\b(?:api|device|dispatch|login|logout|free|"
                         r"billing|branding|messaging|devices|webhooks|usage|audit|privacy|cookies|mobile|compat|contacts|"
                         r"resellers|abuse)\b")
SKIP_TAGS = {"script", "style", "code", "pre", "kbd", "samp", "svg"}
ATTRIBUTES = ("title", "placeholder", "aria-label", "alt")
BRACKETED = re.compile(r"\[[^\[\]]*\]")
ADDRESSES = re.compile(r"https?://\S+|[\w.+-]+@[\w.-]+")
NOT_WORDS = re.compile(r"https?://\S+|[\w.+-]+@[\w.-]+|\+?\d[\d ().:/,%-]*|/[\w/.{}?=&%-]*|\b[a-z0-9]+(?:-[a-z0-9]+)+\b")


VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}

# Pages whose words are not the catalogue's, and why.
NOT_CATALOGUED = {
    "/api/docs": "the API reference is rendered from the OpenAPI document: developer documentation in "
                 "English, like the API's field names and the operators' CLI",
}


class VisibleText(HTMLParser):
    """The text a person sees or hears on a page: text nodes outside code, and labelling attributes.
    An element in another language than the page (``lang="en"`` on an English invoice or policy
    text, a language's own name in the language menu) is written in that language on purpose."""

    def __init__(self, lang: str):
        super().__init__(convert_charrefs=True)
        self.lang = lang
        self.skipping = 0
        self.stack: list[bool] = []  # per open element: whether it started a skipped part
        self.chunks: list[str] = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        skip = tag in SKIP_TAGS or (attrs.get("lang") not in (None, self.lang)) or attrs.get("translate") == "no"
        if tag not in VOID:
            self.stack.append(skip)
            self.skipping += skip
        if skip or self.skipping:
            return
        for name in ATTRIBUTES:
            if attrs.get(name):
                self.chunks.append(attrs[name])
        if tag == "input" and attrs.get("type") in ("submit", "button") and attrs.get("value"):
            self.chunks.append(attrs["value"])

    def handle_endtag(self, tag):
        if tag not in VOID and self.stack:
            self.skipping -= self.stack.pop()

    def handle_data(self, data):
        if not self.skipping and data.strip():
            self.chunks.append(data.strip())


def plain_words(text: str, allowed: set[str]) -> list[str]:
    """Words of ``text`` outside any pseudo-translated ``[…]`` that are not data or allowed names."""
    while True:
        stripped = BRACKETED.sub(" ", text)
        if stripped == text:
            break
        text = stripped
    for name in sorted((n for n in allowed if any(c in n for c in "<>&")), key=len, reverse=True):
        text = text.replace(name, " ")  # a stored name with markup characters, before the patterns change it
    text = NOT_WORDS.sub(" ", IDENTIFIERS.sub(" ", ADDRESSES.sub(" ", text)))
    for name in sorted(allowed, key=len, reverse=True):
        text = text.replace(name, " ")
    return [w for w in re.findall(r"[A-Za-z][A-Za-z'’]+", text)]


def untranslated(html: str, allowed: set[str], lang: str = PSEUDO) -> list[str]:
    parser = VisibleText(lang)
    parser.feed(html)
    return [chunk for chunk in parser.chunks if plain_words(chunk, allowed)]


# -- the site: a workspace with something on every page --------------------------------------------

def stored_names() -> set[str]:
    """Names other tests in this session stored platform-wide (plans, tax rates, resellers and their
    plans): data that admin pages list, not our words. Without this the walk failed whenever
    test_billing_invoices or test_resellers ran before it in the same process."""
    from core.db import app_db, connection

    queries = ["SELECT name FROM public.billing_plan_versions", "SELECT name FROM public.billing_tax_rates",
               "SELECT country FROM public.billing_tax_rates", "SELECT company FROM public.reseller",
               "SELECT name FROM public.reseller_plan"]
    names: set[str] = set()
    with connection():
        for query in queries:
            names |= {n for (n,) in app_db.execute_sql(query) if n and len(n) > 1}
    return names


@pytest.fixture(scope="module")
def site(live_server):
    platform = live_server.platform
    slug = f"pseudo-{secrets.token_hex(4)}"
    made = populated_workspace(live_server, slug, "Pseudo Pizza", "admin password long enough",
                               phone_name="Counter phone", sent_text="Your pizza is ready",
                               received_text="Open on Sunday?")
    tenant, admin, fields = made["tenant"], made["admin"], made["fields"]
    visitors = {"anonymous": {"tenant": live_server.client(slug), "platform": live_server.client(None)},
                "owner": {"tenant": sign_in(live_server, slug, owner_email(tenant))},
                "admin": {"platform": admin_sign_in(live_server, admin.email, "admin password long enough")}}
    reseller = reseller_of(platform, tenant)
    fields = {**fields, "reseller": reseller.slug}
    visitors["anonymous"]["partners"] = live_server.client("partners")
    visitors["partner"] = {"partners": partner_sign_in(live_server, reseller)}
    # Whatever the fixture typed, and the plan the workspace is on, are data, not our words.
    allowed = ALLOWED | {"Pseudo Pizza", "Counter phone", "Your pizza is ready", "Open on Sunday?", "Pro plan",
                         "Ops", "member", f"{slug}-phone", slug, "Raw Phone", "Test plan", "Free", "test token", "Op", "test",
                         # an invoice line: written into the invoice, in its language, when it is issued
                         "plan, one month",
                         # the address book, template and campaign tests/support/site.py makes
                         "Ann Example", "Regulars", "vip", "Pick-up", "Spring sale",
                         "Hello {first_name}, your order is ready.",
                         # the reseller tests/support/resellers.py makes, and its plan
                         "Partner", "Basic"} | stored_names()
    try:
        yield {"server": live_server, "slug": slug, "tenant": tenant, "fields": fields, "visitors": visitors,
               "allowed": allowed, "platform": platform}
    finally:
        try:
            platform.tenants.delete(slug)
        except Exception:
            pass


FORM_PAGE = {("anonymous", "tenant"): "/login", ("anonymous", "platform"): "/", ("owner", "tenant"): "/",
             ("admin", "platform"): "/admin", ("anonymous", "partners"): "/{reseller}/login",
             ("partner", "partners"): "/{reseller}"}


def in_pseudo(client, page: str) -> None:
    """Choose the pseudo-locale the way a translator previews one: the language menu's POST."""
    fetch_xsrf(client, page)
    r = post_form(client, "/lang", {"lang": PSEUDO, "next": "/"}, allow_redirects=False)
    assert r.status_code == 302 and client.cookies.get("lang") == PSEUDO


@pytest.mark.parametrize("visitor, host, path", PAGES, ids=[f"{v}:{h}:{p}" for v, h, p in PAGES])
def test_every_page_is_translated_in_the_pseudo_locale(site, visitor, host, path):
    client = site["visitors"][visitor][host]
    if client.cookies.get("lang") != PSEUDO:
        in_pseudo(client, FORM_PAGE[visitor, host].format(**site["fields"]))
    r = client.get(path.format(**site["fields"]), allow_redirects=False)
    while r.status_code in (302, 303) and r.headers["Location"].startswith("/"):  # as a browser follows them
        r = client.get(r.headers["Location"], allow_redirects=False)
    assert r.status_code == EXPECTED_STATUS.get(path, 200), (r.status_code, r.text[:300])
    assert f'<html lang="{PSEUDO}"' in r.text
    if path in NOT_CATALOGUED:
        return
    plain = untranslated(r.text, site["allowed"])
    if plain:
        with open("/tmp/h24-plain.txt", "a") as fh:
            fh.write(f"== {path}\n" + "\n".join(plain) + "\n")
    assert plain == []


# -- mails ------------------------------------------------------------------------------------------

def mail_text(msg) -> tuple[str, str, str]:
    return (msg["Subject"], msg.get_body(preferencelist=("plain",)).get_content(),
            msg.get_body(preferencelist=("html",)).get_content())


def mails_since(platform, seen: set) -> list:
    out = []
    for path in platform.mailer.outbox():
        if path not in seen:
            out.append(email.message_from_bytes(path.read_bytes(), policy=email.policy.default))
    return out


def test_every_mail_is_translated_in_the_pseudo_locale(site):
    """Each mail we write, to a member whose workspace's language is the pseudo-locale: subject,
    text part and HTML part all come from the catalogue."""
    platform, slug = site["platform"], site["slug"]
    tenant = platform.tenants.set_language(slug, PSEUDO)  # no member chose a language of their own
    try:
        seen = set(platform.mailer.outbox())
        send_every_mail(platform, tenant, site["fields"], site["visitors"]["owner"]["tenant"], PSEUDO)
        mails = mails_since(platform, seen)
        subjects = sorted(m["Subject"] for m in mails)
        assert len(mails) >= 11, subjects
        allowed = site["allowed"] | {"Here it is", "HTTP", "Counter phone"}
        for msg in mails:
            assert msg["Content-Language"] == PSEUDO, msg["Subject"]
            subject, text, html = mail_text(msg)
            assert plain_words(subject, allowed) == [], subject
            assert [line for line in text.splitlines() if plain_words(line, allowed)] == [], text
            assert f'<html lang="{PSEUDO}"' in html
            assert untranslated(html, allowed) == [], html
    finally:
        platform.tenants.set_language(slug, "")


def test_a_password_reset_mail_in_german(live_server, make_tenant):
    """A member who chose German gets the reset mail in German: subject, text and HTML part."""
    from tests.support.worker import run_worker_until

    platform = live_server.platform
    tenant = make_tenant("de-reset")
    owner = owner_email(tenant)
    with tenant_transaction(tenant.ref):
        User.update(language="de").where(User.email == owner).execute()
    client = live_server.client(tenant.slug)
    fetch_xsrf(client, "/forgot-password")
    r = post_form(client, "/forgot-password", {"email": owner}, headers={"Accept-Language": "en"})
    assert r.status_code in (200, 302), r.text[:300]
    assert run_worker_until(platform, lambda: mails_to(platform, owner, "Passwort"))
    msg = mails_to(platform, owner, "Passwort")[0]
    subject, text, html = mail_text(msg)
    assert subject == "Passwort zurücksetzen"
    assert f"Jemand hat darum gebeten, das Passwort von {owner} bei {tenant.name} zurückzusetzen." in text
    assert "Wählen Sie hier ein neues Passwort (eine Stunde lang gültig, einmal):" in text
    assert "Reset your password" not in text and "Someone asked" not in text
    assert msg["Content-Language"] == "de" and '<html lang="de"' in html and "neues Passwort" in html


def test_the_workspace_language_is_the_default_and_a_member_s_own_wins(live_server, make_tenant):
    platform = live_server.platform
    tenant = make_tenant("ws-lang")
    platform.tenants.set_language(tenant.slug, "fr")
    member = f"member@{tenant.slug}.example"
    add_user(platform, tenant, member, password=OWNER_PASSWORD)
    assert platform.language_for("", platform.tenants.get(tenant.slug)) == "fr"
    assert platform.language_for("es", platform.tenants.get(tenant.slug)) == "es"
    assert platform.language_for("", None) == platform.settings.default_language
    # Its pages: French for a visitor whose browser asks for English, until they choose.
    page = live_server.client(tenant.slug).get("/login", headers={"Accept-Language": "en"})
    assert '<html lang="fr">' in page.text
    # A member who chose Spanish on their account page reads Spanish.
    client = sign_in(live_server, tenant.slug, member)
    r = post_form(client, "/account", {"action": "language", "language": "es"}, allow_redirects=False)
    assert r.status_code == 302
    assert '<html lang="es">' in client.get("/", headers={"Accept-Language": "de"}).text


# -- problem+json -----------------------------------------------------------------------------------

def test_a_422_from_the_api_in_french(live_server, make_tenant):
    tenant = make_tenant("fr-api")
    api = api_client(live_server, tenant.slug)
    body = {"text": "", "to": [], "unknown": 1}
    english = api.post("/api/v1/messages", json=body)
    french = api.post("/api/v1/messages", json=body, headers={"Accept-Language": "fr-FR,fr;q=0.9"})
    assert english.status_code == french.status_code == 422
    en, fr = english.json(), french.json()
    assert french.headers["Content-Type"].startswith("application/problem+json")
    assert french.headers["Content-Language"] == "fr"
    assert (fr["type"], fr["code"], fr["status"]) == (en["type"], en["code"], en["status"])
    assert en["title"] == "Unprocessable content" and fr["title"] == "Contenu impossible à traiter"
    assert fr["detail"] == "La requête contient des champs non valides ; rien n’a été envoyé."
    assert [e["field"] for e in fr["errors"]] == [e["field"] for e in en["errors"]]
    said = {e["field"]: e["message"] for e in fr["errors"]}
    assert said["unknown"].startswith("champ inconnu")
    assert all("msgid" not in e and "args" not in e for e in fr["errors"])


def test_a_problem_of_the_core_in_german(live_server):
    r = live_server.client("nobody-" + secrets.token_hex(4)).get("/api/v1/messages",
                                                                  headers={"Accept-Language": "de"})
    assert r.status_code == 404 and r.json()["code"] == "tenant-not-found"
    assert r.json()["title"] == "Nicht gefunden" and r.json()["detail"].startswith("Unter ")


# -- plural forms ------------------------------------------------------------------------------------

PLURALS = {  # "%(num)d day" (dunning) in each shipped language, for 0, 1, 2 and 5
    "de": ("0 Tage", "1 Tag", "2 Tage", "5 Tage"),
    "fr": ("0 jour", "1 jour", "2 jours", "5 jours"),  # French counts 0 as singular
    "es": ("0 días", "1 día", "2 días", "5 días"),
    "it": ("0 giorni", "1 giorno", "2 giorni", "5 giorni"),
    "en": ("0 days", "1 day", "2 days", "5 days"),
}


@pytest.mark.parametrize("lang", sorted(PLURALS))
def test_plural_forms_for_0_1_2_and_5(lang):
    catalogues = Catalogues([LOCALE])
    _, ngettext = catalogues.gettext_for(lang)
    said = tuple(ngettext("Without payment, sending is suspended %(num)d day after the payment was due.",
                          "Without payment, sending is suspended %(num)d days after the payment was due.", n)
                 for n in (0, 1, 2, 5))
    for text, expected in zip(said, PLURALS[lang]):
        assert expected in text, (lang, said)


def test_every_shipped_language_has_a_plural_test():
    assert set(SHIPPED) | {"en"} <= set(PLURALS)


# -- adding a language -------------------------------------------------------------------------------

def test_adding_a_language_with_the_documented_command(tmp_path, cli_env):
    """`smsgw language add CODE` (what `make language CODE=…` runs) makes a catalogue the server
    offers, can switch to, and translates from as soon as a message is translated."""
    import shutil
    import subprocess
    import sys

    from babel.messages.pofile import read_po, write_po

    shutil.copy(LOCALE / "smsgw.pot", tmp_path / "smsgw.pot")
    done = subprocess.run([sys.executable, "-m", "core.cli", "language", "add", "pt_BR", "--locale-dir", str(tmp_path)],
                          env=cli_env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    po = tmp_path / "pt_BR" / "LC_MESSAGES" / "smsgw.po"
    with po.open("rb") as fh:
        catalog = read_po(fh)
    assert str(catalog.locale) == "pt_BR" and catalog.num_plurals == 3
    assert "nplurals=3" in dict(catalog.mime_headers)["Plural-Forms"]
    template = {m.id for m in read_po((tmp_path / "smsgw.pot").open("rb")) if m.id}
    assert {m.id for m in catalog if m.id} == template

    catalog.get("Language").string = "Idioma"  # a translator's first message
    with po.open("wb") as fh:
        write_po(fh, catalog)
    catalogues = Catalogues([tmp_path])
    assert "pt_BR" in catalogues.languages
    assert catalogues.negotiate("pt_BR", "de") == "pt_BR"  # the language menu's cookie switches to it
    assert catalogues.gettext_for("pt_BR")[0]("Language") == "Idioma"
    assert catalogues.gettext_for("pt_BR")[0]("Save") == "Save"  # not yet translated: English

    again = subprocess.run([sys.executable, "-m", "core.cli", "language", "add", "pt_BR", "--locale-dir",
                            str(tmp_path)], env=cli_env, capture_output=True, text=True, timeout=60)
    assert again.returncode == 2 and "already exists" in again.stderr
    wrong = subprocess.run([sys.executable, "-m", "core.cli", "language", "add", "xx", "--locale-dir",
                            str(tmp_path)], env=cli_env, capture_output=True, text=True, timeout=60)
    assert wrong.returncode == 2 and not (tmp_path / "xx").exists()


def test_pseudo_locale_keeps_placeholders_and_markup():
    assert pseudo("Welcome to %(name)s") == "[Ŵéĺçöɱé ţö %(name)s]"
    assert pseudo('I have read the <a href="/privacy">policy</a>') == '[Î ĥȧṽé ŕéȧđ ţĥé <a href="/privacy">ƥöĺíçý</a>]'
    catalogues = Catalogues([LOCALE], pseudo_locales=True)
    assert catalogues.direction(PSEUDO_RTL) == "rtl" and catalogues.direction("de") == "ltr"
    assert PSEUDO not in catalogues.languages  # never offered in the menu or negotiated
    assert catalogues.negotiate(None, PSEUDO) == "en" and catalogues.negotiate(PSEUDO, "de") == PSEUDO
    assert Catalogues([LOCALE]).negotiate(PSEUDO, "de") == "de"  # off unless SMSGW_PSEUDO_LOCALES
