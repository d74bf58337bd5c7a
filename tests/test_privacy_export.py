"""Data export (issue 15, item 2): what goes into an export and what never does, who can download
it, and the API. Real PostgreSQL, real HTTP, the platform's own worker."""

from __future__ import annotations

import io
import json
import re
import zipfile
from urllib.parse import urlsplit

import psycopg2
import pytest

from addons.privacy import export_jobs
from core.datamap import WHOLE_TABLE
from tests.support.devices import submit
from tests.support.identity import (OWNER_PASSWORD, add_user, admin_sql, api_sign_in, audit_rows, bearer, client,
                                    owner_email, post_form, sign_in)
from tests.support.phones import ALL_SCOPES, api_client
from tests.support.worker import run_worker_until

PASSWORD = "another long password"


# -- helpers ---------------------------------------------------------------------------------------

def exports_of(platform, tenant_id) -> list[dict]:
    rows = admin_sql(platform, "SELECT id, state, progress, subject, requested_by, expires_at FROM "
                               "public.privacy_export WHERE tenant_id = %s ORDER BY id", (tenant_id,), fetch=True)
    return [dict(zip(("id", "state", "progress", "subject", "requested_by", "expires_at"), r)) for r in rows]


def wait_ready(platform, tenant_id, export_id):
    def ready():
        return any(e["id"] == export_id and e["state"] == "ready" for e in exports_of(platform, tenant_id))

    assert run_worker_until(platform, ready, timeout=60), exports_of(platform, tenant_id)


def ask_on_page(c, scope: str) -> None:
    r = post_form(c, "/account/privacy", {"section": "export", "scope": scope})
    assert r.status_code == 303, (r.status_code, r.text[:500])


def page_link(c, export_id: int) -> str:
    r = c.get("/account/privacy")
    assert r.status_code == 200, r.text[:300]
    links = re.findall(rf'href="([^"]*/account/privacy/exports/{export_id}/download\?key=[^"]+)"', r.text)
    assert links, r.text
    parts = urlsplit(links[0].replace("&amp;", "&"))
    return f"{parts.path}?{parts.query}"


def unzip(data: bytes) -> dict[str, object]:
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        return {name: json.loads(zf.read(name)) for name in zf.namelist()}


def raw_text(data: bytes) -> str:
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        return "\n".join(zf.read(name).decode() for name in zf.namelist())


def part_rows(files: dict, name: str) -> list[dict]:
    return files[f"{name}.json"]["rows"] if f"{name}.json" in files else []


def user_send(live_server, slug, email_address, password, to, text):
    token = api_sign_in(live_server, slug, email_address, password)["access_token"]
    c = live_server.client(slug)
    c.headers.update(bearer(token))
    sent = submit(c, [to], text=text)
    r = c.post(f"/api/v1/messages/{sent['id']}/cancel")  # a state change: history to export
    assert r.status_code == 200, r.text
    return sent


@pytest.fixture
def workspace(platform, live_server, make_tenant):
    """Workspace A (owner, members Ann and Bob, a token's message) and workspace B whose member has
    Ann's user id: what an export of A must keep apart."""
    a, b = make_tenant("exa"), make_tenant("exb")
    ann = add_user(platform, a, f"ann@{a.slug}.example", PASSWORD)
    bob = add_user(platform, a, f"bob@{a.slug}.example", PASSWORD)
    twin = add_user(platform, b, f"twin@{b.slug}.example", PASSWORD)
    assert twin == ann  # same id in another schema: public tables must be filtered by workspace too
    user_send(live_server, a.slug, f"ann@{a.slug}.example", PASSWORD, "+14155550101", "ann's own text")
    user_send(live_server, a.slug, f"bob@{a.slug}.example", PASSWORD, "+14155550102", "bob's private text")
    submit(api_client(live_server, a.slug), ["+14155550103"], text="the integration's text")
    user_send(live_server, b.slug, f"twin@{b.slug}.example", PASSWORD, "+14155550104", "the other workspace's text")
    sign_in(live_server, b.slug, f"twin@{b.slug}.example", PASSWORD)  # a session and audit events of user:<ann's id> in B
    return {"a": a, "b": b, "ann": ann, "bob": bob}


def member_export(platform, live_server, tenant, email_address, password=PASSWORD):
    c = sign_in(live_server, tenant.slug, email_address, password)
    ask_on_page(c, "me")
    export_id = exports_of(platform, tenant.id)[-1]["id"]
    wait_ready(platform, tenant.id, export_id)
    link = page_link(c, export_id)
    r = c.get(link)
    assert r.status_code == 200, r.text[:300]
    assert r.headers["Content-Type"] == "application/zip"
    return c, export_id, link, r.content


# -- content ---------------------------------------------------------------------------------------

def test_a_members_export_holds_their_data_and_nothing_of_anyone_else(platform, live_server, workspace):
    a, b, ann = workspace["a"], workspace["b"], workspace["ann"]
    _, export_id, _, data = member_export(platform, live_server, a, f"ann@{a.slug}.example")
    files = unzip(data)
    manifest = files["manifest.json"]
    assert manifest["schema_version"] == 1 and manifest["format"] == "smsgw-privacy-export"
    assert manifest["subject"] == {"kind": "user", "user_id": ann, "actors": [f"user:{ann}"]}
    assert {p["file"] for p in manifest["parts"]} | {"manifest.json", "schema.json"} == set(files)
    assert files["schema.json"]["$id"] == "https://smsgw.dev/schemas/privacy-export/1.json"
    # The schema the export carries describes it: the manifest and every part validate against it.
    import fastjsonschema

    schema = files["schema.json"]
    fastjsonschema.validate(schema, manifest)
    part_schema = {**schema, "$ref": "#/$defs/Part"}
    for entry in manifest["parts"]:
        fastjsonschema.validate(part_schema, files[entry["file"]])
        assert len(files[entry["file"]]["rows"]) == entry["rows"]

    assert [u["email"] for u in part_rows(files, "users")] == [f"ann@{a.slug}.example"]
    assert [m["text"] for m in part_rows(files, "messages")] == ["ann's own text"]
    assert [r["phone"] for r in part_rows(files, "recipients")] == ["+14155550101"]
    history = part_rows(files, "messaging_recipient_history")
    assert [h["to_state"] for h in history] == ["cancelled"]
    assert len(part_rows(files, "sessions")) == 1  # the session that asked; none of B's twin
    audit = part_rows(files, "audit_event")
    assert audit and {e["actor"] for e in audit} == {f"user:{ann}"}
    assert "privacy.export.requested" in {e["action"] for e in audit}
    requests_ = part_rows(files, "privacy_request")
    assert [(r["kind"], r["subject"]) for r in requests_] == [("export", f"user:{ann}")]
    # Nothing of the workspace as a whole, of other members or of the other workspace, anywhere.
    for name in ("devices", "device_inbound", "suppressions", "tenant", "webhooks_endpoints"):
        assert part_rows(files, name) == [], name
    text = raw_text(data)
    for foreign in ("bob's private text", "the integration's text", "the other workspace's text", f"bob@{a.slug}",
                    owner_email(a), b.slug, "+14155550102", "+14155550103", "+14155550104"):
        assert foreign not in text, foreign
    state = exports_of(platform, a.id)[-1]
    assert state["id"] == export_id and state["progress"] == 100
    done = admin_sql(platform, "SELECT state, completed_at IS NOT NULL FROM public.privacy_request "
                               "WHERE tenant_id = %s AND kind = 'export'", (a.id,), fetch=True)
    assert done == [("done", True)]


def declared_for_workspace(platform):
    return [d for d in platform.registry.models() if d.privacy.export
            and (d.scope == "tenant" or d.privacy.subjects.get("tenant") not in (None, WHOLE_TABLE))]


def test_a_workspace_export_holds_every_declared_tables_exported_columns(platform, live_server, workspace):
    a = workspace["a"]
    c = sign_in(live_server, a.slug, owner_email(a), OWNER_PASSWORD)
    ask_on_page(c, "workspace")
    export_id = exports_of(platform, a.id)[-1]["id"]
    wait_ready(platform, a.id, export_id)
    files = unzip(c.get(page_link(c, export_id)).content)
    by_table = {p["table"]: p for p in files["manifest.json"]["parts"] if p["table"]}
    declared = declared_for_workspace(platform)
    assert {"users", "messages", "recipients", "public.audit_event", "public.privacy_request"} <= \
        {d.qualified for d in declared}
    for d in declared:
        part = by_table[d.qualified]
        assert part["columns"] == list(d.privacy.export), d.qualified
        body = files[part["file"]]
        assert body["columns"] == list(d.privacy.export)
        assert all(list(row) == list(d.privacy.export) for row in body["rows"]), d.qualified
        if d.scope == "tenant":
            count = admin_sql(platform, f'SELECT count(*) FROM "{a.schema_name}"."{d.table}"', fetch=True)[0][0]
        else:
            count = admin_sql(platform, f'SELECT count(*) FROM public."{d.table}" WHERE '
                                        f'"{d.privacy.subjects["tenant"]}" = %s', (a.id,), fetch=True)[0][0]
            if d.table == "audit_event":  # recorded after the snapshot: the export being ready, its download
                count -= sum(len(audit_rows(platform, a.id, f"privacy.export.{what}")) for what in ("ready", "downloaded"))
        assert len(body["rows"]) == part["rows"] == count, d.qualified
    texts = {m["text"] for m in part_rows(files, "messages")}
    assert texts == {"ann's own text", "bob's private text", "the integration's text"}
    history = admin_sql(platform, f'SELECT count(*) FROM "{a.schema_name}".recipient_events', fetch=True)[0][0]
    assert len(part_rows(files, "messaging_recipient_history")) == history == 2  # Ann's and Bob's cancels
    assert "the other workspace's text" not in raw_text(c.get(page_link(c, export_id)).content)


def test_no_secret_hash_or_ciphertext_is_in_any_export(platform, live_server, workspace, monkeypatch):
    monkeypatch.setenv("SMSGW_WEBHOOK_ALLOW_PRIVATE", "1")  # the webhook below points at 127.0.0.1
    a = workspace["a"]
    api = api_client(live_server, a.slug, ALL_SCOPES + ["privacy:manage"])
    r = api.post("/api/v1/webhooks", json={"url": "http://127.0.0.1:9/hook", "events": ["sms:sent"]})
    assert r.status_code == 201, r.text
    webhook_secret = r.json()["secret"]
    r = api.post("/api/v1/privacy/exports", json={"scope": "workspace"})
    assert r.status_code == 202, r.text
    export_id = r.json()["id"]
    wait_ready(platform, a.id, export_id)
    url = api.get(f"/api/v1/privacy/exports/{export_id}").json()["download_url"]
    data = api.get(urlsplit(url).path + "?" + urlsplit(url).query).content
    _, member_data = member_export(platform, live_server, a, f"ann@{a.slug}.example")[2:]
    # Every value of every secret column of the workspace's schema and of the shared tables.
    columns = admin_sql(platform, "SELECT table_schema, table_name, column_name FROM information_schema.columns "
                                  "WHERE table_schema IN (%s, 'public') AND (column_name LIKE '%%\\_hash' OR "
                                  "column_name LIKE '%%\\_enc' OR column_name IN ('data', 'secret'))",
                        (a.schema_name,), fetch=True)
    assert {c for _, _, c in columns} >= {"password_hash", "token_hash", "secret_enc"}
    secrets_ = {webhook_secret}
    for schema, table, column in columns:
        if (schema, table) == ("public", "privacy_export_chunk"):
            continue  # the exports themselves
        for (value,) in admin_sql(platform, f'SELECT "{column}"::text FROM "{schema}"."{table}" WHERE '
                                            f'"{column}" IS NOT NULL', fetch=True):
            if len(value) >= 12:
                secrets_.add(value)
    assert len(secrets_) > 5
    for blob in (data, member_data):
        text = raw_text(blob)
        assert webhook_secret not in text
        leaked = [s[:12] for s in secrets_ if s in text]
        assert not leaked, leaked
        for name, body in unzip(blob).items():
            if name.endswith(".json") and isinstance(body, dict) and "rows" in body:
                keys = {k for row in body["rows"] for k in row} | set(body["columns"] or [])
                assert not [k for k in keys if k.endswith(("_hash", "_enc")) or k in ("secret", "password")], name
    assert "webhooks_endpoints.json" in unzip(data)


# -- the download link -----------------------------------------------------------------------------

def test_the_link_is_bound_to_the_session_expires_and_every_download_is_audited(platform, live_server, workspace):
    a, ann = workspace["a"], workspace["ann"]
    c, export_id, link, data = member_export(platform, live_server, a, f"ann@{a.slug}.example")
    assert c.get(link).content == data  # again, in the same session
    downloads = audit_rows(platform, a.id, "privacy.export.downloaded")
    assert [(e["actor"], e["target"]) for e in downloads] == [(f"user:{ann}", f"privacy_export:{export_id}")] * 2

    same_person_elsewhere = sign_in(live_server, a.slug, f"ann@{a.slug}.example", PASSWORD)
    other_member = sign_in(live_server, a.slug, f"bob@{a.slug}.example", PASSWORD)
    owner = sign_in(live_server, a.slug, owner_email(a), OWNER_PASSWORD)
    other_workspace = sign_in(live_server, workspace["b"].slug, f"twin@{workspace['b'].slug}.example", PASSWORD)
    for stranger in (same_person_elsewhere, other_member, owner):
        r = stranger.get(link)
        assert r.status_code == 404, r.status_code
    assert other_workspace.get(link).status_code in (401, 302, 404)  # the link names A: B's cookie is not sent
    assert client(live_server, a.slug).get(link).status_code == 302  # not signed in: to the sign-in page
    tampered = link.replace("key=", "key=x")
    assert c.get(tampered).status_code == 404
    other_id = link.replace(f"/exports/{export_id}/", f"/exports/{export_id + 1000}/")
    assert c.get(other_id).status_code == 404
    assert same_person_elsewhere.get("/account/privacy").text.count("/download?key=") == 0
    assert len(audit_rows(platform, a.id, "privacy.export.downloaded")) == 2  # refusals download nothing

    # 24 hours later: refused, and the sweep deletes the file.
    admin_sql(platform, "UPDATE public.privacy_export SET expires_at = now() - interval '1 second' WHERE id = %s",
              (export_id,))
    r = c.get(link)
    assert r.status_code == 410, r.text[:300]
    assert admin_sql(platform, "SELECT count(*) FROM public.privacy_export_chunk WHERE export_id = %s",
                     (export_id,), fetch=True)[0][0] > 0
    platform.setup_tasks()
    assert export_jobs.sweep(platform)["expired"] >= 1
    assert admin_sql(platform, "SELECT count(*) FROM public.privacy_export_chunk WHERE export_id = %s",
                     (export_id,), fetch=True)[0][0] == 0
    assert exports_of(platform, a.id)[-1]["state"] == "expired"
    assert c.get(link).status_code == 410
    assert len(audit_rows(platform, a.id, "privacy.export.downloaded")) == 2


# -- the API ---------------------------------------------------------------------------------------

def test_the_api_exports_the_workspace_for_a_token_and_binds_the_link_to_it(platform, live_server, workspace):
    a = workspace["a"]
    api = api_client(live_server, a.slug, ["privacy:manage"])
    r = api.post("/api/v1/privacy/exports", json={})
    assert r.status_code == 202, r.text
    made = r.json()
    assert made["scope"] == "workspace" and made["state"] == "queued" and made["download_url"] is None
    assert r.headers["Location"] == f"/api/v1/privacy/exports/{made['id']}"
    again = api.post("/api/v1/privacy/exports", json={"scope": "workspace"})
    assert again.status_code == 200 and again.json()["id"] == made["id"]  # still being built: the same one
    wait_ready(platform, a.id, made["id"])
    status = api.get(f"/api/v1/privacy/exports/{made['id']}").json()
    assert status["state"] == "ready" and status["progress"] == 100 and status["size_bytes"] > 0
    url = urlsplit(status["download_url"])
    r = api.get(f"{url.path}?{url.query}")
    assert r.status_code == 200 and unzip(r.content)["manifest.json"]["subject"]["kind"] == "workspace"
    # Another token of the workspace with the same rights sees the state, not the link, and cannot use it.
    other = api_client(live_server, a.slug, ["privacy:manage"])
    seen = other.get(f"/api/v1/privacy/exports/{made['id']}")
    assert seen.status_code == 200 and seen.json()["download_url"] is None
    assert other.get(f"{url.path}?{url.query}").status_code == 404
    # A token is not a person: no "me".
    before = len(exports_of(platform, a.id))
    r = api.post("/api/v1/privacy/exports", json={"scope": "me"})
    assert r.status_code == 403 and r.headers["Content-Type"].startswith("application/problem+json")
    # A token without privacy:manage can do nothing here.
    weak = api_client(live_server, a.slug, ["messages:read"])
    r = weak.post("/api/v1/privacy/exports", json={})
    assert r.status_code == 403 and r.json()["code"] == "forbidden"
    assert weak.get(f"/api/v1/privacy/exports/{made['id']}").status_code == 404
    assert len(exports_of(platform, a.id)) == before


def test_a_member_signed_in_through_the_api_exports_their_own_data(platform, live_server, workspace):
    a, bob = workspace["a"], workspace["bob"]
    token = api_sign_in(live_server, a.slug, f"bob@{a.slug}.example", PASSWORD)["access_token"]
    c = live_server.client(a.slug)
    c.headers.update(bearer(token))
    assert c.post("/api/v1/privacy/exports", json={"scope": "workspace"}).status_code == 403
    r = c.post("/api/v1/privacy/exports", json={"scope": "me"})
    assert r.status_code == 202, r.text
    wait_ready(platform, a.id, r.json()["id"])
    url = urlsplit(c.get(f"/api/v1/privacy/exports/{r.json()['id']}").json()["download_url"])
    files = unzip(c.get(f"{url.path}?{url.query}").content)
    assert [m["text"] for m in part_rows(files, "messages")] == ["bob's private text"]
    assert files["manifest.json"]["subject"]["user_id"] == bob


HOSTILE = [
    ({"scope": "everything"}, 422, "validation-failed"),
    ({"scope": "workspace", "subject": "user:1"}, 422, "validation-failed"),
    ({"scope": ["workspace"]}, 422, "validation-failed"),
    ({"scope": None}, 422, "validation-failed"),
    ([1, 2], 400, "invalid-json"),
    ("a string", 400, "invalid-json"),
]


def test_hostile_input_is_answered_with_problem_json_and_creates_nothing(platform, live_server, workspace):
    a, b = workspace["a"], workspace["b"]
    api = api_client(live_server, a.slug, ["privacy:manage"])
    before = exports_of(platform, a.id)
    requests_before = admin_sql(platform, "SELECT count(*) FROM public.privacy_request", fetch=True)
    for body, status, code in HOSTILE:
        r = api.post("/api/v1/privacy/exports", json=body)
        assert r.status_code == status, (body, r.status_code, r.text)
        assert r.headers["Content-Type"].startswith("application/problem+json") and r.json()["code"] == code, body
    for raw, ctype, status in ((b"{", "application/json", 400), (b"scope=workspace", "text/plain", 415),
                               (b'{"scope": "work\\u0000space"}', "application/json", 400)):
        r = api.post("/api/v1/privacy/exports", data=raw, headers={"Content-Type": ctype})
        assert r.status_code == status, (raw, r.status_code, r.text)
        assert r.headers["Content-Type"].startswith("application/problem+json")
    for path in ("abc", "0", "-1", "99999999999999999999999", "1%00"):
        r = api.get(f"/api/v1/privacy/exports/{path}")
        assert r.status_code == 404 and r.headers["Content-Type"].startswith("application/problem+json"), path
    # Another workspace's export, by its id: not found.
    other = api_client(live_server, b.slug, ["privacy:manage"]).post("/api/v1/privacy/exports", json={}).json()
    r = api.get(f"/api/v1/privacy/exports/{other['id']}")
    assert r.status_code == 404
    # A session without the XSRF header cannot start one through the API.
    c = sign_in(live_server, a.slug, owner_email(a), OWNER_PASSWORD)
    r = c.post("/api/v1/privacy/exports", json={})
    assert r.status_code == 403 and r.json()["code"] == "xsrf-failed"
    r = post_form(c, "/account/privacy", {"section": "export", "scope": "everything"})
    assert r.status_code == 422
    member = sign_in(live_server, a.slug, f"bob@{a.slug}.example", PASSWORD)  # privacy:self, not :manage
    assert "Export the whole workspace" not in member.get("/account/privacy").text
    r = post_form(member, "/account/privacy", {"section": "export", "scope": "workspace"})
    assert r.status_code == 403
    assert exports_of(platform, a.id) == before
    assert admin_sql(platform, "SELECT count(*) FROM public.privacy_request", fetch=True) == \
        [(requests_before[0][0] + 1,)]  # B's


# -- durability ------------------------------------------------------------------------------------

def test_a_build_whose_worker_died_is_taken_over_and_finishes(platform, live_server, workspace):
    a = workspace["a"]
    api = api_client(live_server, a.slug, ["privacy:manage"])
    export_id = api.post("/api/v1/privacy/exports", json={}).json()["id"]
    platform.setup_tasks()
    platform.huey.flush()  # the trigger is lost (as if Redis restarted): only the row remains
    # A worker claimed it, wrote a chunk and died: its lease lapses.
    admin_sql(platform, "UPDATE public.privacy_export SET state = 'building', attempts = 1, progress = 40, "
                        "lease_until = now() - interval '1 second' WHERE id = %s", (export_id,))
    admin_sql(platform, "INSERT INTO public.privacy_export_chunk (export_id, seq, tenant_id, data) "
                        "VALUES (%s, 0, %s, 'half a zip')", (export_id, a.id))
    assert export_jobs.sweep(platform)["requeued"] >= 1
    wait_ready(platform, a.id, export_id)
    url = urlsplit(api.get(f"/api/v1/privacy/exports/{export_id}").json()["download_url"])
    files = unzip(api.get(f"{url.path}?{url.query}").content)  # a whole, valid zip: the dead attempt's chunk is gone
    assert files["manifest.json"]["subject"]["kind"] == "workspace"
    assert admin_sql(platform, "SELECT attempts FROM public.privacy_export WHERE id = %s", (export_id,),
                     fetch=True) == [(2,)]


def test_the_export_reads_the_declarations_so_a_new_addon_table_is_covered(platform, workspace):
    """Walk the declarations, never a list: a declared table the exporter has never heard of is in it."""
    from addons.privacy.exporter import ExportSubject, declared_parts
    from core.datamap import DeclaredModel, PersonalData

    extra = DeclaredModel("reseller", "reseller_notes", "tenant", PersonalData(
        personal=("note",), subjects={"user": "author_id"}, export=("note", "created_at"), erase="delete"))
    parts = declared_parts(platform.registry.models() + [extra], ExportSubject("user", workspace["ann"]),
                           workspace["a"].id)
    mine = [p for p in parts if p.table == "reseller_notes"]
    assert len(mine) == 1 and mine[0].columns == ("note", "created_at")
    assert mine[0].count_sql[0] == 'SELECT count(*) FROM "reseller_notes" WHERE ("author_id"::text = %s)'


@pytest.mark.fault
def test_a_worker_killed_mid_build_loses_nothing(platform, live_server, make_tenant, cli_env, tmp_path):
    """A real ``smsgw worker`` is killed (SIGKILL) while it writes an export: the row stays, with its
    half-written file; once the lease lapses the sweep hands it out again and another worker
    builds it whole."""
    import signal
    import subprocess
    import sys
    import time

    t = make_tenant("exkill")
    admin_sql(platform, f'INSERT INTO "{t.schema_name}".messages (text, encoding, segments, created_by) '
                        "SELECT 'bulk message ' || g, 'GSM-7', 1, 'user:1' FROM generate_series(1, 150000) g")
    api = api_client(live_server, t.slug, ["privacy:manage"])
    export_id = api.post("/api/v1/privacy/exports", json={}).json()["id"]
    log = open(tmp_path / "worker.log", "wb")
    worker = subprocess.Popen([sys.executable, "-m", "core.cli", "worker", "--workers", "1"], env=cli_env,
                              stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.time() + 90
        while time.time() < deadline:
            row = exports_of(platform, t.id)[-1]
            if row["state"] == "building" and row["progress"] > 0:
                break
            assert row["state"] != "ready", "built before it could be killed: seed more"
            time.sleep(0.05)
        else:
            pytest.fail("the worker never started the build:\n" + (tmp_path / "worker.log").read_text()[-3000:])
        worker.send_signal(signal.SIGKILL)
        worker.wait(10)
    finally:
        if worker.poll() is None:
            worker.kill()
        log.close()
    killed = exports_of(platform, t.id)[-1]
    assert killed["state"] == "building" and 0 < killed["progress"] < 100
    # Two minutes later (the lease's length), as the clock of the database sees it:
    admin_sql(platform, "UPDATE public.privacy_export SET lease_until = now() - interval '1 second' WHERE id = %s",
              (export_id,))
    platform.setup_tasks()
    assert export_jobs.sweep(platform)["requeued"] >= 1
    wait_ready(platform, t.id, export_id)
    url = urlsplit(api.get(f"/api/v1/privacy/exports/{export_id}").json()["download_url"])
    files = unzip(api.get(f"{url.path}?{url.query}").content)
    assert len(files["messages.json"]["rows"]) == 150000
    assert admin_sql(platform, "SELECT attempts FROM public.privacy_export WHERE id = %s", (export_id,),
                     fetch=True) == [(2,)]


def test_a_suspended_workspaces_export_is_not_queued_again_and_fails_after_a_day(platform, live_server, make_tenant):
    t = make_tenant("exsusp")
    api = api_client(live_server, t.slug, ["privacy:manage"])
    export_id = api.post("/api/v1/privacy/exports", json={}).json()["id"]
    platform.setup_tasks()
    platform.huey.flush()
    admin_sql(platform, "UPDATE public.privacy_export SET created_at = now() - interval '5 minutes' WHERE id = %s",
              (export_id,))
    admin_sql(platform, "UPDATE public.tenant SET status = 'suspended' WHERE id = %s", (t.id,))
    try:
        export_jobs.sweep(platform)
        assert queued_exports(platform) == []  # no task a suspended workspace would skip forever
        admin_sql(platform, "UPDATE public.privacy_export SET created_at = now() - interval '25 hours' WHERE id = %s",
                  (export_id,))
        assert export_jobs.sweep(platform)["failed"] == 1
        assert exports_of(platform, t.id)[-1]["state"] == "failed"
        assert admin_sql(platform, "SELECT state FROM public.privacy_request WHERE tenant_id = %s", (t.id,),
                         fetch=True) == [("refused",)]
    finally:
        admin_sql(platform, "UPDATE public.tenant SET status = 'active' WHERE id = %s", (t.id,))


def queued_exports(platform) -> list[tuple]:
    from tests.support.worker import queued

    return queued(platform, export_jobs.TASK)
