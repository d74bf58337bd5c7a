"""Translations: language negotiation, translated pages, the language switch, complete catalogues."""

from __future__ import annotations

import re
import secrets
from pathlib import Path

import pytest
from babel.messages import frontend as babel_frontend
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

from core.addons import AddonRegistry
from core.i18n import Catalogues
from core.permissions import ADMIN, ROLE_LABELS
from core.users import TENANT_ROLES
from core.web.admin_pages import CORE_SECTIONS
from core.web.auth_pages import SAME_ANSWER, TOO_MANY
from core.web.problem import TITLES

ROOT = Path(__file__).resolve().parent.parent
LOCALE = ROOT / "locale"
SHIPPED = ("de", "es", "fr", "it")
DOMAIN = "smsgw"


@pytest.fixture(scope="module")
def catalogues() -> Catalogues:
    return Catalogues([LOCALE])


# -- (a) negotiation ---------------------------------------------------------------

def test_shipped_languages_are_found(catalogues):
    assert catalogues.languages == ["de", "en", "es", "fr", "it"]
    assert catalogues.default == "en"


@pytest.mark.parametrize("cookie, header, expected", [
    ("fr", "de", "fr"),                          # the cookie wins over Accept-Language
    ("es", "de;q=1, fr;q=0.9", "es"),
    ("en", "de", "en"),                          # English is chosen, though it has no catalogue
    ("xx", "de", "de"),                          # a cookie naming no shipped language is ignored
    ("../../etc/passwd", "fr", "fr"),
    ("", "fr", "fr"),
    ("DE", "fr", "fr"),                          # cookies hold our exact codes only
])
def test_cookie_wins_when_it_names_a_shipped_language(catalogues, cookie, header, expected):
    assert catalogues.negotiate(cookie, header) == expected


@pytest.mark.parametrize("header, expected", [
    ("de", "de"),
    ("fr;q=0.5, de;q=0.9, en;q=0.1", "de"),      # highest q first, whatever the order
    ("en;q=0.2, es", "es"),                      # no q means q=1
    ("fr, de", "fr"),                            # equal q: the first one listed
    ("de;q=0, fr;q=0.1", "fr"),                  # q=0 means "not this one"
    ("ja, zh-CN;q=0.9, fr;q=0.1", "fr"),         # unshipped ones are passed over
    ("en-US,en;q=0.9,de;q=0.8", "en"),
])
def test_accept_language_by_quality(catalogues, header, expected):
    assert catalogues.negotiate(None, header) == expected


@pytest.mark.parametrize("header, expected", [
    ("de-AT", "de"),
    ("de-CH;q=0.9, fr-CA;q=0.8", "de"),
    ("FR-be", "fr"),                             # tags are case-insensitive
    ("es-419", "es"),
    ("pt-BR, es-MX;q=0.5", "es"),
    ("zh-Hant-TW, de-Latn-DE;q=0.3", "de"),
])
def test_region_falls_back_to_the_language(catalogues, header, expected):
    assert catalogues.negotiate(None, header) == expected


@pytest.mark.parametrize("header", [None, "", "ja", "pt-BR, zh;q=0.5", "*", "x-klingon"])
def test_unknown_languages_get_english(catalogues, header):
    assert catalogues.negotiate(None, header) == "en"


@pytest.mark.parametrize("header", [
    ",,,", ";;;", "de;q=abc", "de;q=", ";q=0.5", "q=1", "de;;q=0.3", "de;q=-1", "de;q=nan",
    "de;q=1e999", "\x00\xff\ud800", "de ;  q = 0.5", "=;=,=;", "a" * 10_000,
    ", ".join(["xx"] * 1000) + ", de",
])
def test_garbage_accept_language_does_not_crash(catalogues, header):
    assert catalogues.negotiate(None, header) in catalogues.languages
    assert catalogues.negotiate("fr", header) == "fr"


def test_default_language_is_configurable():
    assert Catalogues([LOCALE], default="de").negotiate(None, "ja") == "de"
    assert Catalogues([ROOT / "no-such-dir"]).languages == ["en"]


def test_gettext_formats_keyword_arguments(catalogues):
    _, ngettext = catalogues.gettext_for("de")
    assert _("Welcome to %(name)s", name="100% Kaffee") == "Willkommen bei 100% Kaffee"
    assert _("Language") == "Sprache"
    assert _("A message no catalogue has") == "A message no catalogue has"
    en, en_ngettext = catalogues.gettext_for("en")
    assert en("Welcome to %(name)s", name="Acme") == "Welcome to Acme"
    assert en_ngettext("%(num)d phone", "%(num)d phones", 1) == "1 phone"
    assert en_ngettext("%(num)d phone", "%(num)d phones", 3) == "3 phones"


# -- (b) translated pages ----------------------------------------------------------------

# The page an anonymous visitor of a tenant sees: its sign-in page (``/`` sends them there).
PAGES = {
    "de": ("Bei {name} anmelden", "Passwort vergessen?", "Sprache"),
    "fr": ("Se connecter à {name}", "Mot de passe oublié\u00a0?", "Langue"),
    "es": ("Iniciar sesión en {name}", "¿Ha olvidado su contraseña?", "Idioma"),
    "en": ("Sign in to {name}", "Forgot your password?", "Language"),
}


@pytest.fixture
def tenant(make_tenant):
    return make_tenant("i18n", name="Bäckerei Müller & Co")


def html_name(name: str) -> str:
    return name.replace("&", "&amp;")


def test_anonymous_tenant_home_redirects_to_its_sign_in_page(live_server, tenant):
    r = live_server.client(tenant.slug).get("/", allow_redirects=False)
    assert r.status_code == 302
    assert r.headers["Location"] == "/login?next=%2F"


@pytest.mark.parametrize("header, lang", [("de", "de"), ("fr-FR,fr;q=0.9,en;q=0.5", "fr"),
                                          ("es-ES", "es"), ("ja", "en")])
def test_tenant_page_in_the_accepted_language(live_server, tenant, header, lang):
    r = live_server.client(tenant.slug).get("/login", headers={"Accept-Language": header})
    assert r.status_code == 200
    assert f'<html lang="{lang}">' in r.text
    for phrase in PAGES[lang]:
        assert phrase.format(name=html_name(tenant.name)) in r.text
    others = [PAGES[o][0].format(name=html_name(tenant.name)) for o in PAGES if o != lang]
    assert not any(o in r.text for o in others)


def test_dynamic_messages_are_translated_on_the_pages(live_server, tenant):
    """Strings that reach ``_()`` as variables (errors, titles) come out translated."""
    client = live_server.client(tenant.slug)
    r = client.post("/login", headers={"Accept-Language": "fr"},
                    data={"_xsrf": xsrf_token(client), "email": "nobody@example.com",
                          "password": "not the password", "next": "/"})
    assert r.status_code == 401
    assert "L’adresse e-mail ou le mot de passe est incorrect." in r.text

    r = client.get("/reset-password?token=garbage", headers={"Accept-Language": "es"})
    assert r.status_code == 400
    assert "<h1 class=\"error-title\">Enlace no válido</h1>" in r.text
    assert "Este enlace no es válido. Copie el enlace completo del correo electrónico" in r.text
    assert "<title>Enlace no válido · SMS Gateway</title>" in r.text

    admin = live_server.client(None)
    r = admin.post("/admin/login", headers={"Accept-Language": "de"},
                   data={"_xsrf": xsrf_token(admin, "/admin/login"), "email": "nobody@example.com",
                         "password": "not the password", "next": "/admin"})
    assert r.status_code == 401
    assert "E-Mail-Adresse oder Passwort ist nicht korrekt." in r.text


def test_platform_home_and_error_pages_are_translated(live_server):
    r = live_server.client(None).get("/", headers={"Accept-Language": "es"})
    assert r.status_code == 200 and '<html lang="es">' in r.text
    assert "Envíe y reciba SMS a través de sus propios teléfonos Android" in r.text
    assert "SMS a través de sus propios teléfonos." in r.text

    r = live_server.client(f"nadie-{secrets.token_hex(4)}").get("/", headers={"Accept-Language": "de-AT"})
    assert r.status_code == 404 and '<html lang="de">' in r.text
    assert "<h1>Nicht gefunden</h1>" in r.text
    assert "<title>404 · Nicht gefunden · SMS Gateway</title>" in r.text
    assert "Fehlercode" in r.text and "Zur Hauptseite" in r.text

    r = live_server.client(None).get("/no-such-page", headers={"Accept-Language": "fr"})
    assert r.status_code == 404 and "<h1>Page introuvable</h1>" in r.text


# -- (c) the language switch --------------------------------------------------------------

XSRF_FIELD = re.compile(r'<input type="hidden" name="_xsrf" value="([^"]+)"')


def xsrf_token(client, path="/login") -> str:
    """GET a page like a browser: it sets the _xsrf cookie and carries the form field."""
    r = client.get(path)
    assert r.status_code == 200
    assert "_xsrf" in client.cookies, r.headers.get("Set-Cookie")
    match = XSRF_FIELD.search(r.text)
    assert match, f"{path} carries no _xsrf field"
    return match.group(1)


def set_cookie_names(response) -> list[str]:
    return [c.split("=", 1)[0].strip() for c in response.raw.headers.getlist("Set-Cookie")]


def test_lang_post_sets_the_cookie_and_later_pages_follow_it(live_server, tenant):
    client = live_server.client(tenant.slug)
    token = xsrf_token(client)
    r = client.post("/lang", data={"_xsrf": token, "lang": "fr", "next": "/login"})
    assert r.status_code == 302
    assert r.headers["Location"] == "/login"
    assert set_cookie_names(r) == ["lang"]
    cookie = r.headers["Set-Cookie"]
    assert cookie.startswith("lang=fr;")
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Max-Age=31536000" in cookie
    assert client.cookies.get("lang") == "fr"

    # The cookie outranks the browser's Accept-Language from now on.
    page = client.get("/login", headers={"Accept-Language": "de"})
    assert '<html lang="fr">' in page.text
    assert PAGES["fr"][0].format(name=html_name(tenant.name)) in page.text
    assert '<option value="fr" selected>FR</option>' in page.text

    # And it can be switched back.
    r = client.post("/lang", data={"_xsrf": xsrf_token(client), "lang": "en", "next": "/login"})
    assert r.status_code == 302
    assert '<html lang="en">' in client.get("/login", headers={"Accept-Language": "de"}).text


@pytest.mark.parametrize("nxt, location", [
    ("/", "/"), ("/settings?tab=2", "/settings?tab=2"),
    ("https://evil.example/", "/"), ("//evil.example/", "/"), ("evil", "/"), ("", "/"),
])
def test_lang_post_only_redirects_within_the_site(live_server, tenant, nxt, location):
    client = live_server.client(tenant.slug)
    r = client.post("/lang", data={"_xsrf": xsrf_token(client), "lang": "de", "next": nxt})
    assert r.status_code == 302
    assert r.headers["Location"] == location


def test_lang_post_refuses_backslash_redirects(live_server, tenant):
    client = live_server.client(tenant.slug)
    r = client.post("/lang", data={"_xsrf": xsrf_token(client), "lang": "de", "next": "/\\evil.example/"})
    assert r.headers["Location"] == "/"


def test_lang_post_without_xsrf_is_refused(live_server, tenant):
    # No cookie and no field at all (a cross-site form).
    fresh = live_server.client(tenant.slug)
    r = fresh.post("/lang", data={"lang": "de", "next": "/"})
    assert r.status_code == 403
    assert "lang" not in set_cookie_names(r)
    assert "xsrf-failed" in r.text

    # A cookie, but the form lacks the field, or carries a forged one.
    client = live_server.client(tenant.slug)
    xsrf_token(client)
    for data in ({"lang": "de"}, {"lang": "de", "_xsrf": "2|00000000|" + "0" * 32 + "|1700000000"}):
        r = client.post("/lang", data=data)
        assert r.status_code == 403, data
        assert "lang" not in set_cookie_names(r)
    assert "lang" not in client.cookies
    assert '<html lang="en">' in client.get("/login").text


@pytest.mark.parametrize("lang", ["xx", "", "EN", "de-AT", "../de", "de\r\nSet-Cookie: x=1"])
def test_lang_post_with_unknown_language_is_400_and_sets_no_cookie(live_server, tenant, lang):
    client = live_server.client(tenant.slug)
    r = client.post("/lang", data={"_xsrf": xsrf_token(client), "lang": lang, "next": "/"})
    assert r.status_code == 400
    assert "unknown-language" in r.text
    assert "lang" not in set_cookie_names(r)
    assert "lang" not in client.cookies


# -- (d) complete catalogues --------------------------------------------------------------

PLACEHOLDER = re.compile(r"%(?:\((\w+)\))?[-#0 +]*(?:\d+|\*)?(?:\.\d+)?([diouxXeEfFgGcrsa%])")


def placeholders(text: str) -> list[tuple[str | None, str]]:
    """``%(name)s``-style placeholders of a message, ``%%`` left out, in a stable order."""
    return sorted((m.group(1) or "", m.group(2)) for m in PLACEHOLDER.finditer(text) if m.group(2) != "%")


def babel_method_map():
    with (ROOT / "babel.cfg").open(encoding="utf-8") as fh:
        if hasattr(babel_frontend, "parse_mapping_cfg"):
            return babel_frontend.parse_mapping_cfg(fh, str(ROOT / "babel.cfg"))
        return babel_frontend.parse_mapping(fh)  # Babel < 2.15


@pytest.fixture(scope="module")
def extracted() -> dict:
    """msgid (or (singular, plural)) -> where it is used, as ``make messages`` extracts them."""
    method_map, options_map = babel_method_map()
    found: dict = {}
    for filename, lineno, message, _comments, context in extract_from_dir(str(ROOT), method_map, options_map):
        assert context is None, f"{filename}:{lineno}: message contexts are not used here"
        found.setdefault(message, []).append(f"{filename}:{lineno}")
    return found


def msgid_key(message):
    return message.id if isinstance(message.id, str) else tuple(message.id)


def load_catalog(path):
    with path.open("rb") as fh:
        return read_po(fh)


@pytest.fixture(scope="module")
def shipped():
    return {lang: load_catalog(LOCALE / lang / "LC_MESSAGES" / f"{DOMAIN}.po") for lang in SHIPPED}


def test_extraction_covers_core_templates_themes_and_python(extracted):
    for msgid in ("Welcome to %(name)s", "Language", "Go to the main site",
                  "Send and receive SMS through your own Android phones", "Not found"):
        assert msgid in extracted, f"{msgid!r} was not extracted: is babel.cfg complete?"
    places = {p.split(":")[0] for ps in extracted.values() for p in ps}
    assert "themes/ocean/templates/base.html" in places
    assert "core/templates/error.html" in places


def test_shipped_catalogues_are_exactly_these():
    on_disk = sorted(p.parent.parent.name for p in LOCALE.glob(f"*/LC_MESSAGES/{DOMAIN}.po"))
    assert on_disk == sorted(SHIPPED)
    assert not list(LOCALE.glob("en/LC_MESSAGES/*.po")), "English is the msgid: no en catalogue"


def test_template_is_up_to_date(extracted):
    pot = load_catalog(LOCALE / f"{DOMAIN}.pot")
    in_pot = {msgid_key(m) for m in pot if m.id}
    missing = set(extracted) - in_pot
    stale = in_pot - set(extracted)
    assert not missing, f"run `make messages`: locale/{DOMAIN}.pot lacks {sorted(map(str, missing))}"
    assert not stale, f"run `make messages`: locale/{DOMAIN}.pot still has {sorted(map(str, stale))}"


@pytest.mark.parametrize("lang", SHIPPED)
def test_catalogue_translates_every_message(lang, extracted, shipped):
    catalog = shipped[lang]
    assert str(catalog.locale) == lang
    assert catalog.num_plurals >= 2
    untranslated, fuzzy = [], []
    for msgid in extracted:
        message = catalog.get(msgid if isinstance(msgid, str) else msgid[0])
        strings = [] if message is None else (
            [message.string] if isinstance(message.string, str) else list(message.string))
        if message is None or not strings or not all(s.strip() for s in strings):
            untranslated.append(msgid)
        elif message.fuzzy:
            fuzzy.append(msgid)
        elif not isinstance(msgid, str):
            assert len(strings) == catalog.num_plurals, f"{lang}: {msgid!r} needs {catalog.num_plurals} forms"
    assert not untranslated, f"{lang}: untranslated: {untranslated}"
    assert not fuzzy, f"{lang}: fuzzy (unchecked) translations: {fuzzy}"
    stale = {msgid_key(m) for m in catalog if m.id} - set(extracted) - NOT_YET_MARKED
    assert not stale, f"{lang}: messages no longer in the code (run `make messages`): {stale}"


@pytest.mark.parametrize("lang", SHIPPED)
def test_translations_keep_the_placeholders(lang, shipped):
    catalog = shipped[lang]
    for message in catalog:
        if not message.id:
            continue
        errors = list(message.check(catalog))
        assert not errors, f"{lang}: {message.id!r}: {errors}"
        if isinstance(message.id, str):
            assert placeholders(message.string) == placeholders(message.id), \
                f"{lang}: {message.id!r} -> {message.string!r} changes the placeholders"
        else:
            allowed = set(placeholders(message.id[0])) | set(placeholders(message.id[1]))
            for form in message.string:
                assert set(placeholders(form)) <= allowed, f"{lang}: {message.id!r} -> {form!r}"
                named = {p for p in placeholders(message.id[1]) if p[0] not in ("", "num")}
                assert named <= set(placeholders(form)), f"{lang}: {message.id!r} -> {form!r} drops {named}"
        singular = message.id if isinstance(message.id, str) else message.id[0]
        if "%(" in singular:
            assert message.python_format, f"{lang}: {message.id!r} should be flagged python-format"


# HTML elements a message may hold (``<subdomain>`` in a sentence is a word for the reader, not markup).
MARKUP = re.compile(r"</?(?:a|abbr|b|br|code|em|i|kbd|p|span|strong|sub|sup|time|u)\b[^>]*>|\{\w*\}")


def markup(text: str) -> list[str]:
    """HTML tags and ``{name}`` fields of a message, in a stable order: a translation keeps them all."""
    return sorted(MARKUP.findall(text))


@pytest.mark.parametrize("lang", SHIPPED)
def test_translations_keep_the_markup(lang, shipped):
    for message in shipped[lang]:
        if not message.id:
            continue
        sources = [message.id] if isinstance(message.id, str) else list(message.id)
        forms = [message.string] if isinstance(message.string, str) else list(message.string)
        for form in forms:
            assert markup(form) in [markup(s) for s in sources], \
                f"{lang}: {message.id!r} -> {form!r} changes the markup {markup(sources[0])}"


@pytest.mark.parametrize("lang", SHIPPED)
def test_plural_forms_header_is_the_language_s(lang, shipped):
    """The Plural-Forms header is well formed and says what CLDR says for the language (a wrong
    count of forms would pick the wrong sentence for some numbers)."""
    from babel import Locale
    from babel.messages.plurals import get_plural

    catalog = shipped[lang]
    header = dict(catalog.mime_headers)["Plural-Forms"]
    assert re.fullmatch(r"nplurals=\d+; plural=[-n0-9%=!<>&|?:() ]+;", header), header
    expected = get_plural(Locale.parse(lang))
    assert catalog.num_plurals == expected.num_plurals, (header, str(expected))
    assert catalog.plural_expr.replace(" ", "") == expected.plural_expr.replace(" ", "")


@pytest.mark.parametrize("lang", SHIPPED)
def test_catalogue_has_exactly_the_template_s_messages(lang, shipped):
    """`make messages` would change nothing: the catalogue holds the template's messages, no more."""
    pot = {msgid_key(m) for m in load_catalog(LOCALE / f"{DOMAIN}.pot") if m.id}
    here = {msgid_key(m) for m in shipped[lang] if m.id}
    assert here - NOT_YET_MARKED == pot, (sorted(map(str, pot - here))[:10], sorted(map(str, here - pot))[:10])


def test_placeholder_parser_sees_what_python_sees():
    assert placeholders("Welcome to %(name)s, %(count)d left (100%%)") == [("count", "d"), ("name", "s")]
    assert placeholders("Willkommen bei %(name)s") != placeholders("Willkommen bei %(nom)s")


def test_problem_titles_are_extracted_and_translated(extracted, catalogues, shipped):
    titles = set(TITLES.values()) | {"Error"}  # "Error" is Problem's fallback title
    assert titles <= set(extracted), (
        "mark new problem titles with N_() in core/web/problem.py and run make messages: "
        f"{sorted(titles - set(extracted))}")
    for lang in SHIPPED:
        _, _n = catalogues.gettext_for(lang)
        for title in titles:
            message = shipped[lang].get(title)
            assert message is not None and message.string.strip(), f"{lang}: {title!r} untranslated"
            assert _(title) == message.string
    de, _n = catalogues.gettext_for("de")
    assert de("Not found") == "Nicht gefunden" and de("Too many requests") == "Zu viele Anfragen"


@pytest.mark.parametrize("lang", SHIPPED)
def test_compiled_catalogues_translate_at_run_time(lang, catalogues, shipped):
    _, _n = catalogues.gettext_for(lang)
    for message in shipped[lang]:
        if message.id and isinstance(message.id, str) and "%(" not in message.id:
            assert _(message.id) == message.string
    assert _("Welcome to %(name)s", name="<X>").count("<X>") == 1


# -- (e) messages that reach _() as variables ----------------------------------------------
#
# Templates translate some strings they are handed: _(error) in login.html and
# admin/login.html, _(title) and _(message) in message.html, _(problem.title) in
# error.html, _(item.label) in the menu, role_label(role), _(status|capitalize)
# and _(label) of the admin's data sections. Babel cannot find those in the
# templates: the Python code that defines them marks them with N_().

# Shown through _() but not marked with N_() in the code yet; their translations
# are added to the .po files by hand until they are (then they are extracted like
# the rest, and may be removed from here).
NOT_YET_MARKED: frozenset = frozenset()


def messages_shown_through_variables() -> dict[str, str]:
    """msgid -> where it is shown."""
    found = {
        SAME_ANSWER: "login.html, admin/login.html: _(error)",
        TOO_MANY: "login.html: _(error)",
        "Too many failed sign-ins. Wait a while and try again.": "admin/login.html: _(error)",
    }
    # message.html: _(title) and _(message) from core/web/auth_pages.py, _(message) from the
    # AuthErrors of core/identity.py LinkSigner and of the handlers there.
    for msgid in ("Email not confirmed", "Email confirmed", "Thank you: your email address is confirmed.",
                  "Link not valid", "Invitation not valid",
                  "This link has expired. Ask for a new one.",
                  "This link is not valid. Copy the whole link from the email, or ask for a new one.",
                  "This link belongs to another workspace.",
                  "This link was already used. Ask for a new one if you still need it.",
                  "This link no longer matches an account. Ask for a new one.",
                  "This account is disabled.", "This invitation was already accepted or withdrawn."):
        found[msgid] = "message.html: _(title), _(message)"
    # base.html: _(item.label), core's menu (core/web/base.py BaseHandler.menu) and the addons'.
    for msgid in ("Overview", "Team", "API tokens", "Account"):
        found[msgid] = "base.html: _(item.label)"
    registry = AddonRegistry()  # every installed addon
    for addon in registry.names():  # every addon's entries, whatever a tenant enabled
        for item in registry.call_one(addon, "smsgw_menu_items", tenant=None, user=None) or []:
            found[item.label] = f"base.html: _(item.label) ({addon} addon)"
    # base.html, team.html: role_label(role) (core.permissions.ROLE_LABELS); admin/*.html: _(t.status|capitalize).
    for role in (*TENANT_ROLES, ADMIN, "token"):
        found[ROLE_LABELS[role]] = "base.html, team.html: role_label(role)"
    for status in ("active", "suspended"):  # the CHECK of public.tenant.status
        found[status.capitalize()] = "admin/tenant.html, admin/tenants.html: _(t.status|capitalize)"
    # admin/tenant_data.html: _(label), _(title) of the data sections.
    sections = dict(CORE_SECTIONS)
    for _addon, extra in registry.call_each("smsgw_admin_sections"):
        sections.update(extra)
    for section in sections.values():
        found[section.label] = "admin/tenant_data.html: _(label)"
    for title in (*TITLES.values(), "Error"):
        found[title] = "error.html: _(problem.title)"
    # Addons' own: a message recipient's state (messaging), a webhook delivery's state (webhooks).
    from addons.messaging.states import STATES

    for state in STATES:
        found[state] = "messaging templates: _(m.state), _(r.state), _(e.to)"
    for state in ("pending", "succeeded", "failed"):  # the CHECK of webhook_deliveries.state
        found[state] = "webhooks/deliveries.html: _(d.state)"
    return found


def test_messages_shown_through_variables_are_marked(extracted):
    unmarked = {m: where for m, where in messages_shown_through_variables().items()
                if m not in extracted and m not in NOT_YET_MARKED}
    assert not unmarked, f"mark these with N_() where they are defined, then run make messages: {unmarked}"


@pytest.mark.parametrize("lang", SHIPPED)
def test_messages_shown_through_variables_are_translated(lang, catalogues, shipped):
    _, _n = catalogues.gettext_for(lang)
    for msgid, where in messages_shown_through_variables().items():
        message = shipped[lang].get(msgid)
        assert message is not None and message.string.strip(), f"{lang}: {msgid!r} ({where}) is not translated"
        assert not message.fuzzy, f"{lang}: {msgid!r} ({where}) is fuzzy"
        assert _(msgid) == message.string


def test_hand_added_messages_are_in_every_catalogue(shipped):
    """Until the code marks them, ``pybabel update`` drops them: they must still be there."""
    for lang in SHIPPED:
        for msgid in NOT_YET_MARKED:
            message = shipped[lang].get(msgid)
            assert message is not None and message.string.strip() and not message.fuzzy, \
                f"{lang}: {msgid!r} was lost (was `pybabel update` run before the code marked it with N_()?)"
