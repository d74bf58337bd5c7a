"""Contacts, groups and templates (issue 22 item 8): templates are filled by plain substitution only,
a CSV import shows its errors per row before anything is saved, an export never hands a spreadsheet a
formula, the send form takes a group and a template, lists show names, opt-outs link to the contact,
and one workspace's ids mean nothing in another."""

from __future__ import annotations

import csv
import io
import re

import pytest

from addons.contacts import csvio, service
from tests.support.identity import owner_email, post_form, sign_in
from tests.support.messaging import sql

HOSTILE = "Hi {name} {__class__} {0} {name.__class__} {name!r} {name:>9} %s %(name)s {{ name }} {% if 1 %}x{% endif %} ${name}"


def test_a_template_fills_its_three_fields_and_leaves_everything_else_as_written():
    filled = service.fill(HOSTILE + " {first_name} {phone} {unknown}",
                          service.values_for("Ann Smith", "+4915112345678"))
    assert filled == ("Hi Ann Smith {__class__} {0} {name.__class__} {name!r} {name:>9} %s %(name)s {{ name }} "
                      "{% if 1 %}x{% endif %} $Ann Smith Ann +4915112345678 {unknown}")
    # A value is inserted as it is, never read as a template itself.
    assert service.fill("Dear {name}", {"name": "{phone} {{7*7}} %s"}) == "Dear {phone} {{7*7}} %s"


def test_export_escapes_cells_a_spreadsheet_would_run_as_formulas():
    text = csvio.export_text([{"name": "=HYPERLINK(\"http://x\")", "phone": "+4915112345678", "tags": ["@evil", "ok"],
                               "groups": ["-2+3", "Team"]},
                              {"name": "+1 Plain", "phone": "+14155550100", "tags": [], "groups": []}])
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0] == ["name", "phone", "tags", "groups"]
    assert rows[1] == ["'=HYPERLINK(\"http://x\")", "+4915112345678", "'@evil, ok", "'-2+3; Team"]
    assert rows[2] == ["'+1 Plain", "+14155550100", "", ""]  # an E.164 number stays a number


def test_csv_import_reports_each_bad_row_and_saves_only_on_confirm(live_server, make_tenant):
    t = make_tenant("ct-csv")
    c = sign_in(live_server, t.slug, owner_email(t))
    text = ("name,phone,tags,groups\n"
            "Ann Smith,+4915112345678,vip; berlin,Customers;Newsletter\n"
            ",+4915112345679,,\n"
            "Bob,not a number,,\n"
            "Ann Again,+49 151 12345678,,\n"
            "Cy,+14155550123,,Customers\n")
    r = c.post("/contacts/import", files={"file": ("c.csv", text.encode(), "text/csv")}, data={"_xsrf": c.cookies["_xsrf"]})
    assert r.status_code == 200, r.text[:500]
    assert "Row 3: the name must be 1 to 200 characters" in r.text
    assert "Row 4: “not a number” is not a phone number." in r.text
    assert "Row 5: +4915112345678 is already on row 2 of this file" in r.text
    assert "2 contacts are ready to import" in r.text
    assert sql(t, "SELECT count(*) FROM contacts") == [(0,)]  # a preview saves nothing
    payload = re.search(r'name="payload" value="([^"]+)"', r.text).group(1)
    tampered = post_form(c, "/contacts/import", {"confirm": "1", "payload": payload[:-2] + "xx"})
    assert tampered.status_code == 400 and sql(t, "SELECT count(*) FROM contacts") == [(0,)]
    done = post_form(c, "/contacts/import", {"confirm": "1", "payload": payload})
    assert done.status_code == 303
    assert sql(t, "SELECT name, phone, tags FROM contacts ORDER BY name") == [
        ("Ann Smith", "+4915112345678", ["vip", "berlin"]), ("Cy", "+14155550123", [])]
    assert sql(t, "SELECT g.name, count(*) FROM contact_groups g JOIN contact_group_members m ON m.group_id = g.id "
                  "GROUP BY g.name ORDER BY g.name") == [("Customers", 2), ("Newsletter", 1)]
    # A file without the columns, and a file that is not text, are refused as a whole.
    for body, message in ((b"who,what\nx,y\n", "at least &#39;name&#39; and &#39;phone&#39;"),
                          (b"name,phone\n\xff\xfe,1\n", "not UTF-8")):
        r = c.post("/contacts/import", files={"file": ("c.csv", body, "text/csv")}, data={"_xsrf": c.cookies["_xsrf"]})
        assert r.status_code == 422 and message in r.text


def test_send_form_sends_a_template_to_a_group_filled_per_contact_and_lists_show_names(live_server, make_tenant):
    t = make_tenant("ct-send")
    c = sign_in(live_server, t.slug, owner_email(t))
    assert post_form(c, "/contacts/groups", {"group_name": "Customers"}).status_code == 303
    group_id = sql(t, "SELECT id FROM contact_groups")[0][0]
    for name, number in (("Ann Smith", "+4915112345678"), ("Bob Jones", "+14155550123")):
        r = post_form(c, "/contacts", {"name": name, "phone": number, "tags": "vip", "group": str(group_id)})
        assert r.status_code == 303, r.text[:300]
    assert post_form(c, "/templates", {"name": "Hostile", "body": HOSTILE}).status_code == 303
    template_id = sql(t, "SELECT id FROM message_templates")[0][0]
    form = c.get("/send").text
    assert f'<option value="{group_id}">Customers (2 contacts)</option>' in form and ">Hostile</option>" in form

    # The text left empty: the template's; a typed number that is nobody's contact fills only {phone}.
    r = post_form(c, "/send", {"to": "+14155550199", "text": "", "group": str(group_id), "template": str(template_id)})
    assert r.status_code == 302 and r.headers["Location"] == "/messages", r.text[:500]
    texts = dict(sql(t, "SELECT r.phone, m.text FROM recipients r JOIN messages m ON m.id = r.message_id"))
    tail = " {__class__} {0} {name.__class__} {name!r} {name:>9} %s %(name)s {{ name }} {% if 1 %}x{% endif %} $"
    assert texts == {"+4915112345678": "Hi Ann Smith" + tail + "Ann Smith",
                     "+14155550123": "Hi Bob Jones" + tail + "Bob Jones",
                     "+14155550199": "Hi " + tail}

    # A text without fields to a group: one message to every number.
    r = post_form(c, "/send", {"to": "", "text": "Shop closed today", "group": str(group_id)})
    assert r.status_code == 302 and r.headers["Location"].startswith("/messages/")
    assert sql(t, "SELECT count(*) FROM recipients r JOIN messages m ON m.id = r.message_id "
                  "WHERE m.text = 'Shop closed today'") == [(2,)]

    listing = c.get("/messages").text
    assert '<span class="contact-name">Ann Smith</span>' in listing and "Bob Jones" in listing
    detail = c.get(r.headers["Location"]).text
    assert re.search(r'<a href="/contacts/\d+" class="contact-name">Ann Smith</a>', detail)


def test_an_opt_out_links_to_its_contact_and_the_contact_says_so(live_server, make_tenant):
    t = make_tenant("ct-stop")
    c = sign_in(live_server, t.slug, owner_email(t))
    assert post_form(c, "/contacts", {"name": "Dora Stop", "phone": "+4915112345670"}).status_code == 303
    contact_id = sql(t, "SELECT id FROM contacts")[0][0]
    before = c.get(f"/contacts/{contact_id}")
    assert before.status_code == 200 and "Dora Stop" in before.text and "contact-opted-out" not in before.text
    assert post_form(c, "/suppressions", {"action": "add", "phone": "+4915112345670", "reason": "STOP"}).status_code == 302
    page = c.get("/suppressions").text
    assert f'<a href="/contacts/{contact_id}" class="contact-name">Dora Stop</a>' in page
    assert 'id="contact-opted-out"' in c.get(f"/contacts/{contact_id}").text


def test_contact_form_errors_keep_what_was_typed_and_save_nothing(live_server, make_tenant):
    t = make_tenant("ct-err")
    c = sign_in(live_server, t.slug, owner_email(t))
    r = post_form(c, "/contacts", {"name": "Eve Typed", "phone": "12", "tags": "a, b"})
    assert r.status_code == 422
    assert 'value="Eve Typed"' in r.text and 'value="12"' in r.text and 'value="a, b"' in r.text
    assert 'aria-invalid="true" aria-describedby="e-c-phone"' in r.text
    assert post_form(c, "/contacts", {"name": "Eve", "phone": "+4915112345671"}).status_code == 303
    again = post_form(c, "/contacts", {"name": "Eve Twice", "phone": "+49 151 12345671"})
    assert again.status_code == 422 and "is already the contact “Eve”" in again.text
    assert sql(t, "SELECT name FROM contacts") == [("Eve",)]


@pytest.fixture
def two_workspaces(live_server, make_tenant):
    a, b = make_tenant("ct-a"), make_tenant("ct-b")
    ca, cb = (sign_in(live_server, t.slug, owner_email(t)) for t in (a, b))
    assert post_form(ca, "/contacts/groups", {"group_name": "A's customers"}).status_code == 303
    group_id = sql(a, "SELECT id FROM contact_groups")[0][0]
    assert post_form(ca, "/contacts", {"name": "Alice of A", "phone": "+4915112345672",
                                       "group": str(group_id)}).status_code == 303
    assert post_form(ca, "/templates", {"name": "A's secret", "body": "A only {name}"}).status_code == 303
    ids = {"contact": sql(a, "SELECT id FROM contacts")[0][0], "group": group_id,
           "template": sql(a, "SELECT id FROM message_templates")[0][0]}
    return a, b, ca, cb, ids


def test_one_workspaces_ids_mean_nothing_in_another(two_workspaces):
    a, b, ca, cb, ids = two_workspaces
    assert cb.get(f"/contacts/{ids['contact']}").status_code == 404
    assert cb.get(f"/templates/{ids['template']}").status_code == 404
    assert post_form(cb, f"/contacts/{ids['contact']}", {"name": "Taken over", "phone": "+4915112345672"}).status_code == 404
    assert post_form(cb, f"/templates/{ids['template']}", {"action": "delete", "confirmed": "1"}).status_code == 404
    assert post_form(cb, "/contacts/groups", {"action": "delete", "group_id": str(ids["group"]),
                                              "confirmed": "1"}).status_code == 404
    # Sending from B with A's group or template sends nothing and names neither.
    r = post_form(cb, "/send", {"to": "", "text": "", "group": str(ids["group"])})
    assert r.status_code == 422 and "A&#39;s customers" not in r.text and "Alice" not in r.text
    r = post_form(cb, "/send", {"to": "+14155550124", "text": "", "template": str(ids["template"])})
    assert r.status_code == 422 and "A only" not in r.text
    assert sql(b, "SELECT count(*) FROM messages") == [(0,)]
    # B's lists do not name A's contact; A's still does.
    assert "Alice of A" not in cb.get("/contacts").text and "Alice of A" not in cb.get("/contacts/export.csv").text
    assert sql(a, "SELECT name FROM contacts") == [("Alice of A",)]
    assert sql(a, "SELECT name FROM message_templates") == [("A's secret",)]


def test_a_saved_reply_in_a_conversation_is_filled_for_the_contact_and_stays_there(live_server, make_tenant):
    t = make_tenant("ct-reply")
    c = sign_in(live_server, t.slug, owner_email(t))
    assert post_form(c, "/contacts", {"name": "Finn Reply", "phone": "+4915112345673"}).status_code == 303
    assert post_form(c, "/templates", {"name": "Thanks", "body": "Thanks, {first_name}!"}).status_code == 303
    template_id = sql(t, "SELECT id FROM message_templates")[0][0]
    assert post_form(c, "/send", {"to": "+4915112345673", "text": "First"}).status_code == 302
    page = c.get("/inbox/%2B4915112345673").text
    assert re.search(r'Conversation with <a href="/contacts/\d+" class="contact-name">Finn Reply</a>', page)
    assert 'id="f-template-reply"' in page and 'data-body="Thanks, {first_name}!"' in page
    r = post_form(c, "/send", {"to": "+4915112345673", "text": "", "template": str(template_id),
                               "return_to": "/inbox/%2B4915112345673"})
    assert r.status_code == 302 and r.headers["Location"] == "/inbox/%2B4915112345673"
    assert sql(t, "SELECT text FROM messages ORDER BY id") == [("First",), ("Thanks, Finn!",)]


def test_contacts_and_templates_are_declared_personal_data_the_workspace_export_takes(platform):
    from addons.privacy.exporter import ExportSubject, declared_parts

    models = platform.registry.models()
    contacts = next(d for d in models if d.table == "contacts")
    assert contacts.privacy.subjects == {"phone": "phone"} and contacts.privacy.erase == "delete"
    workspace = {p.table: p.columns for p in declared_parts(models, ExportSubject("workspace"), 1)}
    assert workspace["contacts"] == ("name", "phone", "tags", "created_at", "updated_at")
    assert workspace["message_templates"] == ("name", "body", "created_at", "updated_at")
    member = {p.table for p in declared_parts(models, ExportSubject("user", 1), 1)}
    assert "contacts" not in member  # a contact is about the person at the number, not about a member
