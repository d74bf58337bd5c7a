"""White label (issue 18, item 4): a workspace's brand on its pages, its mails, its logo, and the
uploads and colours it refuses; the hooks a reseller addon implements."""

from __future__ import annotations

import re
import struct
import zlib

import pytest

from addons.branding import logo as logos
from addons.branding import service
from addons.branding.parts import BrandPart
from core.addons import hookimpl
from tests.support.identity import add_user, fetch_xsrf, mails_to, owner_email, post_form, sign_in

PLATFORM_NAME = re.compile(r"SMS Gateway(?! for Android)")  # the phone app's own name is a name, not ours


def chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def png(width: int = 32, height: int = 32, after: bytes = b"", text: bytes = b"") -> bytes:
    rows = b"".join(b"\x00" + b"\x10\x60\xa0" * width for _ in range(height))
    return (logos.PNG_SIGNATURE + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + (chunk(b"tEXt", b"Comment\x00" + text) if text else b"")
            + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"") + after)


SVG = (b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 40 20">'
       b'<!-- made by hand --><rect width="40" height="20" fill="#123456"/><text x="2" y="14">Acme</text></svg>')
HOSTILE = {
    "svg-script": (b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>', "<script>"),
    "svg-onload": (b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"><rect/></svg>', "onload"),
    "svg-external-href": (b'<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink">'
                          b'<use xlink:href="https://evil.example/x.svg#a"/></svg>', "https://evil.example/x.svg#a"),
    "svg-external-url": (b'<svg xmlns="http://www.w3.org/2000/svg"><rect fill="url(https://evil.example/p)"/></svg>',
                         "url(https://evil.example/p)"),
    "svg-foreign-object": (b'<svg xmlns="http://www.w3.org/2000/svg"><foreignObject><p xmlns="http://www.w3.org/1999/'
                           b'xhtml">hi</p></foreignObject></svg>', "foreignObject"),
    "svg-entities": (b'<?xml version="1.0"?><!DOCTYPE svg [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;">]>'
                     b'<svg xmlns="http://www.w3.org/2000/svg"><text>&b;</text></svg>', "DOCTYPE"),
    "svg-style": (b'<svg xmlns="http://www.w3.org/2000/svg"><style>@import url(https://evil.example/)</style></svg>',
                  "<style>"),
    "polyglot-png": (png(after=b"<html><script>alert(1)</script></html>"), "after the image"),
    "png-zip-polyglot": (png(after=b"PK\x03\x04" + b"\x00" * 40), "after the image"),
    "oversize": (png() + b"\x00" * (logos.MAX_BYTES + 10), "KiB"),
    "tiny-png": (png(8, 8), "16 to 2048"),
    "damaged-png": (png()[:40] + b"\x00" + png()[41:], "checksum"),
    "wrong-type": (b"GIF89a\x01\x00\x01\x00\x00\x00\x00;", "neither a PNG nor an SVG"),
    "html": (b"<html><body><script>alert(1)</script></body></html>", "neither a PNG nor an SVG"),
    "empty": (b"", "Choose a PNG or SVG file"),
}


@pytest.fixture
def owner(live_server, make_tenant):
    tenant = make_tenant("brand")
    client = sign_in(live_server, tenant.slug, owner_email(tenant))
    fetch_xsrf(client, "/brand")
    return tenant, client


def brand_it(client, **fields) -> object:
    form = {"product_name": "", "mail_sender_name": "", "support_email": "", "colour_brand": "", "colour_text": "",
            "theme": ""}
    form.update(fields)
    return post_form(client, "/brand", form)


def test_the_owner_brands_the_workspace_and_every_part_of_the_page_shows_it(owner):
    tenant, client = owner
    r = brand_it(client, product_name="Acme Texts", colour_brand="#1A3D6B", colour_text="#ffffff",
                 support_email="help@acme.example", theme="ocean")
    assert r.status_code == 303, r.text[:500]
    page = client.get("/").text
    assert re.search(r"<title>[^<]*Acme Texts</title>", page)
    assert re.search(r'class="brand"[^>]*>.*Acme Texts', page)
    assert "/static/theme/ocean/theme.css" in page and not PLATFORM_NAME.search(page)
    sheet = re.search(r'<link rel="stylesheet" href="(/brand/style\.css\?v=[0-9a-f]+)">', page).group(1)
    css = client.get(sheet)
    assert css.headers["Content-Type"].startswith("text/css")
    assert "--brand: #1a3d6b;" in css.text and "--brand-contrast: #ffffff;" in css.text
    assert 'href="mailto:help@acme.example"' in page  # the brand's support address, in the footer
    # The sign-in page and a 404 of the workspace are branded too, for visitors who are not signed in.
    anonymous = client.__class__(client.server, tenant.slug)
    for path, status in (("/login", 200), ("/no-such-page", 404)):
        r = anonymous.get(path)
        assert r.status_code == status and "Acme Texts" in r.text and not PLATFORM_NAME.search(r.text), path


def test_the_api_docs_page_of_a_branded_workspace_names_the_brand(owner):
    tenant, client = owner
    assert brand_it(client, product_name="Acme Texts").status_code == 303
    r = client.get("/api/docs")
    assert r.status_code == 200 and "Acme Texts API" in r.text and not PLATFORM_NAME.search(r.text)


@pytest.mark.parametrize("fields, message", [
    ({"colour_brand": "#777777", "colour_text": "#888888"}, "contrast of 1.3:1"),
    ({"colour_brand": "#fafafa", "colour_text": "#000000"}, "Links in #fafafa"),
    ({"colour_brand": "red"}, "as #rrggbb"),
    ({"colour_brand": "#12345g"}, "as #rrggbb"),
    ({"product_name": "x" * 61}, "At most 60 characters"),
    ({"mail_sender_name": "Evil <attacker@evil.example>"}, "simple punctuation"),
    ({"support_email": "not an address"}, "support@example.com"),
    ({"theme": "../default"}, "Choose a theme from the list"),
])
def test_unreadable_colours_and_bad_fields_are_refused_with_a_reason_and_nothing_is_saved(owner, fields, message):
    tenant, client = owner
    r = brand_it(client, product_name="Kept Name")
    assert r.status_code == 303
    r = brand_it(client, **{"product_name": "Changed", **fields})
    assert r.status_code == 422 and message in r.text.replace("&#34;", '"'), r.text[-2000:]
    assert service.own(tenant.id).settings.product_name == "Kept Name"


def test_a_png_and_an_svg_logo_are_served_as_images_under_a_sandbox(owner):
    tenant, client = owner
    r = post_form(client, "/brand/logo", {}, files={"logo": ("logo.png", png(text=b"<script>x</script>"), "image/png")})
    assert r.status_code == 303, r.text[:500]
    page = client.get("/").text
    src = re.search(r'<img class="brand-logo" src="(/brand/logo\?v=\d+)"', page).group(1)
    served = client.__class__(client.server, tenant.slug).get(src)  # visitors see it too (the sign-in page)
    assert served.status_code == 200 and served.headers["Content-Type"] == "image/png"
    assert "sandbox" in served.headers["Content-Security-Policy"]
    assert served.content.startswith(logos.PNG_SIGNATURE) and b"tEXt" not in served.content  # re-written
    r = post_form(client, "/brand/logo", {}, files={"logo": ("logo.svg", SVG, "image/svg+xml")})
    assert r.status_code == 303
    src2 = re.search(r'<img class="brand-logo" src="(/brand/logo\?v=\d+)"', client.get("/").text).group(1)
    assert src2 != src
    served = client.get(src2)
    assert served.headers["Content-Type"] == "image/svg+xml"
    assert served.headers["Content-Security-Policy"].startswith("default-src 'none'") and "sandbox" in \
        served.headers["Content-Security-Policy"]
    assert b"<text x=\"2\" y=\"14\">Acme</text>" in served.content and b"made by hand" not in served.content
    r = post_form(client, "/brand/logo", {"action": "remove"})
    assert r.status_code == 303 and client.get(src2).status_code == 404


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_uploads_are_refused_with_a_readable_message_and_the_old_logo_stays(owner, name):
    tenant, client = owner
    assert post_form(client, "/brand/logo", {}, files={"logo": ("ok.png", png(), "image/png")}).status_code == 303
    before = service.logo(tenant.id)
    data, says = HOSTILE[name]
    r = post_form(client, "/brand/logo", {}, files={"logo": ("logo.svg", data, "image/svg+xml")})
    assert r.status_code == 422, (r.status_code, r.text[:300])
    error = re.search(r'<p class="field-error" id="e-logo" role="alert">([^<]*)</p>', r.text).group(1)
    assert says in error.replace("&lt;", "<").replace("&gt;", ">").replace("&#39;", "'"), error
    assert service.logo(tenant.id) == before


def test_a_member_cannot_open_the_brand_settings(live_server, make_tenant):
    tenant = make_tenant("brandm")
    add_user(live_server.platform, tenant, f"member@{tenant.slug}.example", "member password long enough")
    member = sign_in(live_server, tenant.slug, f"member@{tenant.slug}.example", "member password long enough")
    assert member.get("/brand").status_code == 403
    assert post_form(member, "/brand", {"product_name": "Mine"}).status_code == 403
    assert service.own(tenant.id) is None


def test_mails_of_a_branded_workspace_come_from_its_name_and_name_it(live_server, owner):
    tenant, client = owner
    assert brand_it(client, product_name="Acme Texts", mail_sender_name="Acme Support").status_code == 303
    invited = f"new-member@{tenant.slug}.example"
    r = post_form(client, "/team", {"action": "invite", "email": invited, "role": "user"})
    assert r.status_code == 302, r.text[:300]
    [mail] = mails_to(live_server.platform, invited)
    assert mail["From"].startswith("Acme Support <")
    body = mail.get_body(preferencelist=("plain",)).get_content()
    assert "Acme Texts" in body and not PLATFORM_NAME.search(body + mail["Subject"] + mail["From"])


class Reseller:
    """What a reseller addon does through the two hooks the branding addon offers."""

    def __init__(self, part: BrandPart, editable: bool | None):
        self.part, self.editable, self.asked = part, editable, []

    @hookimpl
    def smsgw_brand_defaults(self, tenant):
        self.asked.append(tenant.slug)
        return self.part

    @hookimpl
    def smsgw_brand_editable(self, tenant):
        return self.editable


@pytest.fixture
def reseller(live_server):
    registry = live_server.platform.registry
    made = []

    def install(part: BrandPart, editable: bool | None = None) -> Reseller:
        plugin = Reseller(part, editable)
        registry.pm.register(plugin, name=f"reseller-{len(made)}")
        made.append(plugin)
        service.brand_changed(None)
        return plugin

    yield install
    for plugin in made:
        registry.pm.unregister(plugin)
    service.brand_changed(None)


def test_a_reseller_s_defaults_apply_below_the_workspace_s_own_settings(owner, reseller):
    tenant, client = owner
    seller = reseller(BrandPart(product_name="Reseller Co", colour_brand="#202060", theme="ocean"))
    page = client.get("/").text
    assert "Reseller Co" in page and "/static/theme/ocean/theme.css" in page and tenant.slug in seller.asked
    assert brand_it(client, product_name="Own Name").status_code == 303
    page = client.get("/").text
    assert "Own Name" in page and "Reseller Co" not in page and "/static/theme/ocean/theme.css" in page
    sheet = re.search(r'href="(/brand/style\.css\?v=[0-9a-f]+)"', page).group(1)
    assert "--brand: #202060;" in client.get(sheet).text


def test_a_reseller_may_keep_the_workspace_from_changing_its_brand(owner, reseller):
    tenant, client = owner
    reseller(BrandPart(product_name="Fixed Brand"), editable=False)
    page = client.get("/brand")
    assert page.status_code == 200 and "managed by the company that provides it" in page.text
    r = brand_it(client, product_name="Mine")
    assert r.status_code == 403 and "managed by the company that provides it" in r.text
    r = post_form(client, "/brand/logo", {}, files={"logo": ("ok.png", png(), "image/png")})
    assert r.status_code == 403 and service.logo(tenant.id) is None
    r = post_form(client, "/brand/domains", {"action": "add", "host": "sms.fixed.example"})
    assert r.status_code == 403


def test_a_change_of_brand_reaches_other_processes_through_notify(live_server, owner):
    """The kernel's brand cache (core.brand.BrandCache) forgets a workspace when another process
    announces a change; until then pages keep the cached brand and never ask the database."""
    import time

    from core.brand import BRAND_CHANNEL
    from core.db import app_db, connection

    tenant, client = owner
    platform = live_server.platform
    assert "Notified" not in client.get("/").text
    assert platform.brand_cache.peek(tenant) is not None  # the page above cached it
    with connection():  # what service.save does in another process: the row, then NOTIFY
        app_db.execute_sql("INSERT INTO public.workspace_brand (tenant_id, product_name) VALUES (%s, 'Notified')",
                           (tenant.id,))
        assert "Notified" not in client.get("/").text  # still the cached answer
        app_db.execute_sql("SELECT pg_notify(%s, %s)", (BRAND_CHANNEL, str(tenant.id)))
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and platform.brand_cache.peek(tenant) is not None:
        time.sleep(0.05)
    assert "Notified" in client.get("/").text


# -- every page and every mail of a branded workspace ----------------------------------------------

@pytest.fixture(scope="module")
def branded_site(live_server):
    """A workspace with something on every page (tests/support/site.py), branded as "Acme Texts"."""
    import secrets

    from tests.support.site import populated_workspace

    slug = f"acme-{secrets.token_hex(4)}"
    made = populated_workspace(live_server, slug, "Acme Ltd", "admin password long enough", phone_name="Front desk",
                               sent_text="Your parcel is here", received_text="Thanks!")
    tenant = made["tenant"]
    service.save(tenant.id, {"product_name": "Acme Texts", "mail_sender_name": "Acme Support",
                             "support_email": "help@acme.example", "theme": "contrast"})
    owner_client = sign_in(live_server, slug, owner_email(tenant))
    try:
        yield {"tenant": tenant, "fields": made["fields"], "owner": owner_client,
               "anonymous": live_server.client(slug), "platform": live_server.platform}
    finally:
        live_server.platform.tenants.delete(slug)


def workspace_pages():
    from tests.test_browser_layout import PAGES

    return [(visitor, path) for visitor, host, path in PAGES if host == "tenant"]


@pytest.mark.parametrize("visitor, path", workspace_pages(), ids=[f"{v}:{p}" for v, p in workspace_pages()])
def test_no_page_of_a_branded_workspace_names_the_platform(branded_site, visitor, path):
    from tests.test_browser_layout import EXPECTED_STATUS

    client = branded_site[visitor]
    r = client.get(path.format(**branded_site["fields"]))
    while r.status_code in (302, 303) and r.headers["Location"].startswith("/"):
        r = client.get(r.headers["Location"])
    assert r.status_code == EXPECTED_STATUS.get(path, 200), (r.status_code, r.text[:300])
    assert re.search(r"<title>[^<]*Acme Texts</title>", r.text), re.search(r"<title>.*</title>", r.text)
    assert "/static/theme/contrast/theme.css" in r.text
    assert PLATFORM_NAME.findall(r.text) == []


def test_no_mail_of_a_branded_workspace_names_the_platform(branded_site):
    from tests.support.site import send_every_mail
    from tests.test_translations import mail_text, mails_since

    platform, tenant = branded_site["platform"], branded_site["tenant"]
    seen = set(platform.mailer.outbox())
    send_every_mail(platform, tenant, branded_site["fields"], branded_site["owner"])
    mails = mails_since(platform, seen)
    # "Your workspaces" lists every workspace of an address across the platform (asked on the main
    # site, not on the workspace): the platform's mail, in the platform's name.
    workspace_mails = [m for m in mails if m["Subject"] != "Your workspaces"]
    assert len(workspace_mails) >= 10, sorted(m["Subject"] for m in mails)
    for msg in workspace_mails:
        subject, text, html = mail_text(msg)
        assert PLATFORM_NAME.findall(" ".join((msg["From"], subject, text, html))) == [], subject
        assert msg["From"].startswith("Acme Support <"), msg["From"]
