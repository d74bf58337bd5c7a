"""The addon loader: ordering, missing dependencies, cycles, manifests, and a real third-party addon."""

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from core.addons import Addon, AddonError, order, read_manifest

ROOT = Path(__file__).resolve().parent.parent
HELLO = ROOT / "tests" / "fixtures" / "hello_addon"


def addon(name, *depends):
    return Addon(name=name, version="1", summary="", depends=tuple(depends), license="MIT",
                 author="x", package=f"pkg_{name}", path=Path("."))


def test_order_puts_dependencies_first():
    ordered = [a.name for a in order([addon("messaging", "devices"), addon("devices"),
                                      addon("webhooks", "messaging", "devices"), addon("audit")])]
    assert ordered.index("devices") < ordered.index("messaging") < ordered.index("webhooks")
    assert set(ordered) == {"messaging", "devices", "webhooks", "audit"}


def test_order_is_deterministic():
    a = [addon("b"), addon("a"), addon("c", "a")]
    assert [x.name for x in order(a)] == [x.name for x in order(list(reversed(a)))]


def test_missing_dependency_is_named():
    with pytest.raises(AddonError, match="'messaging' depends on 'devices', which is not installed"):
        order([addon("messaging", "devices")])


def test_cycle_is_named():
    with pytest.raises(AddonError, match="cycle: a -> b -> c -> a"):
        order([addon("a", "b"), addon("b", "c"), addon("c", "a")])


def test_manifest_is_read_without_running_code(tmp_path, monkeypatch):
    pkg = tmp_path / "evil_addon"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("raise SystemExit('imported!')\n")
    (pkg / "__manifest__.py").write_text("__import__('os').system('touch pwned')\n")
    sys.path.insert(0, str(tmp_path))
    try:
        with pytest.raises(AddonError, match="dict literal"):
            read_manifest("evil_addon")
        assert not (tmp_path / "pwned").exists()
        (pkg / "__manifest__.py").write_text("{'name': 'evil', 'version': '1'}")
        with pytest.raises(AddonError, match="lacks summary, depends, license, author"):
            read_manifest("evil_addon")
    finally:
        sys.path.remove(str(tmp_path))


def test_unknown_package_is_clear():
    with pytest.raises(AddonError, match="cannot be found"):
        read_manifest("no_such_addon_package_xyz")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def hello_installed(tmp_path_factory):
    """A real `pip install` of the example reseller addon into a directory of its own."""
    target = tmp_path_factory.mktemp("site")
    build = tmp_path_factory.mktemp("build")
    import shutil
    src = build / "hello_addon"
    shutil.copytree(HELLO, src)
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
                    "--disable-pip-version-check", "--target", str(target), str(src)], check=True)
    assert list(target.glob("smsgw_hello-1.0.0.dist-info/entry_points.txt"))
    return target


def signed_in_overview(base: str, tenant) -> str:
    """The Overview (``/``) of ``tenant`` as its owner sees it, signed in through the form."""
    from tests.support.identity import OWNER_PASSWORD, owner_email

    session = requests.Session()
    session.headers["Host"] = f"{tenant.slug}.localhost"
    session.get(base + "/login", timeout=5)
    r = session.post(base + "/login", data={"email": owner_email(tenant), "password": OWNER_PASSWORD,
                                            "_xsrf": session.cookies.get("_xsrf")}, timeout=10)
    assert r.status_code in (200, 302), r.text[:300]
    page = session.get(base + "/", timeout=10)
    assert page.status_code == 200, page.text[:300]
    return page.text


@pytest.mark.slow
def test_third_party_addon_route_served_only_to_tenants_that_enabled_it(
        platform, make_tenant, cli_env, hello_installed):
    env = dict(cli_env)
    env["PYTHONPATH"] = f"{hello_installed}{os.pathsep}{env['PYTHONPATH']}"
    smsgw = [sys.executable, "-m", "core.cli"]
    listed = subprocess.run(smsgw + ["addons", "list"], env=env, cwd=ROOT, capture_output=True, text=True)
    assert listed.returncode == 0, listed.stderr
    assert "hello" in listed.stdout and "a reseller's example addon" in listed.stdout
    # Its command (smsgw_cli) runs with the platform started; refused input is a message and status 2.
    greeted = subprocess.run(smsgw + ["hello", "--name", "Ada"], env=env, cwd=ROOT, capture_output=True, text=True)
    assert greeted.returncode == 0 and "Hello, Ada, from a third-party addon's command" in greeted.stdout
    refused = subprocess.run(smsgw + ["hello", "--name", " "], env=env, cwd=ROOT, capture_output=True, text=True)
    assert refused.returncode == 2 and "error: say whom to greet" in refused.stderr

    on, off = make_tenant("hello-on", name="Enabled Co"), make_tenant("hello-off", name="Other Co")
    port = free_port()
    env["SMSGW_PORT"] = str(port)
    server = subprocess.Popen(smsgw + ["serve"], env=env, cwd=ROOT, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True)
    try:
        base = f"http://127.0.0.1:{port}"
        for _ in range(200):
            try:
                if requests.get(base + "/health/live", timeout=1).status_code == 200:
                    break
            except requests.ConnectionError:
                time.sleep(0.1)
        else:
            server.kill()
            pytest.fail("server did not start:\n" + server.stdout.read())
        # The server applied the addon's tenant migration to existing tenants at start.
        enabled = subprocess.run(smsgw + ["addons", "enable", on.slug, "hello"], env=env, cwd=ROOT,
                                 capture_output=True, text=True)
        assert enabled.returncode == 0, enabled.stderr
        # The running server learns of the change through NOTIFY.
        deadline = time.time() + 10
        while time.time() < deadline:
            r = requests.get(base + "/hello", headers={"Host": f"{on.slug}.localhost"}, timeout=5)
            if r.status_code == 200:
                break
            time.sleep(0.1)
        assert r.status_code == 200
        assert "Hello from a third-party addon to Enabled Co (2 greetings stored)" in r.text
        assert "0 requests heard" in r.text  # this one finishes after its page was drawn
        r = requests.get(base + "/hello", headers={"Host": f"{off.slug}.localhost"}, timeout=5)
        assert r.status_code == 404
        assert "Hello from" not in r.text
        # smsgw_request_finished reached hello for its own workspace's page only: not for the 404s of
        # the workspace without it, nor for "on" before it was enabled.
        r = requests.get(base + "/hello", headers={"Host": f"{on.slug}.localhost"}, timeout=5)
        assert "1 requests heard" in r.text, r.text
        # Its part of the Overview (smsgw_overview_parts): a section and a line under Needs attention,
        # for the workspace that enabled it only.
        for tenant, shown in ((on, True), (off, False)):
            overview = signed_in_overview(base, tenant)
            assert ("A third-party section with 2 greetings" in overview) == shown, tenant.slug
            assert ("2 greetings wait to be read" in overview) == shown, tenant.slug
        # Disabling takes it away again.
        subprocess.run(smsgw + ["addons", "disable", on.slug, "hello"], env=env, cwd=ROOT, check=True,
                       capture_output=True)
        deadline = time.time() + 10
        while time.time() < deadline:
            r = requests.get(base + "/hello", headers={"Host": f"{on.slug}.localhost"}, timeout=5)
            if r.status_code == 404:
                break
            time.sleep(0.1)
        assert r.status_code == 404
    finally:
        server.terminate()
        out, _ = server.communicate(timeout=30)
    assert server.returncode == 0, out
    assert "Stopped." in out


@pytest.mark.slow
def test_third_party_addon_adds_a_permission_a_scope_and_a_role_grant_through_hooks_alone(
        platform, make_tenant, cli_env, hello_installed):
    """hello registers ``hello:read`` (held by Customers, an API token scope) and an API route that
    requires it, declares its table and subscribes to messaging's events; a server that has hello
    installed enforces and delivers all of it, and this process never sees it."""
    from core.permissions import catalogue
    from tests.support.identity import OWNER_PASSWORD, add_user, owner_email, smsgw
    from tests.support.serve import start_serve, stop_serve

    assert "hello:read" not in catalogue().permissions  # the rest of the suite does not see the addon
    env = dict(cli_env)
    env["PYTHONPATH"] = f"{hello_installed}{os.pathsep}{env['PYTHONPATH']}"
    listed = smsgw(env, "permissions")
    assert listed.returncode == 0, listed.stderr
    row = next(line for line in listed.stdout.splitlines() if line.startswith("hello:read "))
    assert row.split() == ["hello:read", "yes", "-", "-", "yes", "-", "hello", "Count", "the", "greetings"]

    tenant = make_tenant("hello-perm")
    add_user(platform, tenant, f"member@{tenant.slug}.example", OWNER_PASSWORD, role="user")
    tokens = {}
    for name, scope in (("hello", "hello:read"), ("other", "messages:read")):
        made = smsgw(env, "token", "create", "--tenant", tenant.slug, "--name", name, "--scope", scope)
        assert made.returncode == 0, made.stderr
        tokens[name] = made.stdout.strip()
    proc, port, _ = start_serve(env)
    try:
        base = f"http://127.0.0.1:{port}"
        host = {"Host": f"{tenant.slug}.{platform.settings.base_domain}"}

        def greetings(token):
            return requests.get(base + "/api/hello/v1/greetings", timeout=10,
                                headers={**host, "Authorization": f"Bearer {token}"})

        assert greetings(tokens["hello"]).status_code == 404  # not enabled for this workspace yet
        enabled = smsgw(env, "addons", "enable", tenant.slug, "hello")
        assert enabled.returncode == 0, enabled.stderr
        deadline = time.time() + 10
        while (r := greetings(tokens["hello"])).status_code == 404 and time.time() < deadline:
            time.sleep(0.1)  # the server learns of the change through NOTIFY
        # An API token created with the addon's scope may call its route ...
        assert r.status_code == 200, r.text
        assert r.json() == {"greetings": 2}
        # ... one without it may not.
        r = greetings(tokens["other"])
        assert r.status_code == 403 and r.headers["Content-Type"].startswith("application/problem+json")
        assert r.json()["code"] == "forbidden"
        # People, per the addon's role grant: Customers hold hello:read, Users do not.
        for email_address, status in ((owner_email(tenant), 200), (f"member@{tenant.slug}.example", 403)):
            signed_in = requests.post(base + "/api/v1/auth/token", headers=host, timeout=10,
                                      json={"email": email_address, "password": OWNER_PASSWORD})
            assert signed_in.status_code == 200, signed_in.text
            access = signed_in.json()["access_token"]
            assert (email_address, greetings(access).status_code) == (email_address, status)
            me = requests.get(base + "/api/v1/me", headers={**host, "Authorization": f"Bearer {access}"}, timeout=10)
            assert ("hello:read" in me.json()["permissions"]) == (status == 200)
            if status == 200:
                owner_access = access
        # Its event subscription: each accepted message stores a greeting, in the same transaction.
        sent = requests.post(base + "/api/v1/messages", headers={**host, "Authorization": f"Bearer {owner_access}"},
                             json={"text": "hi", "to": ["+14155550127", "+14155550128"]}, timeout=10)
        assert sent.status_code == 202, sent.text
        assert greetings(tokens["hello"]).json() == {"greetings": 4}
        # Its table is declared (the privacy walk will see it), through smsgw_models alone.
        declared = subprocess.run([sys.executable, "-c", "from core.addons import AddonRegistry; print(sorted("
                                   "m.table for m in AddonRegistry().models() if m.addon == 'hello'))"],
                                  env=env, cwd=ROOT, capture_output=True, text=True)
        assert declared.stdout.strip() == "['hello_greeting']", declared.stderr
    finally:
        out = stop_serve(proc)
    assert "Traceback" not in out, out


def test_enabling_unknown_addon_is_refused(platform, make_tenant):
    from core.tenancy import TenantError

    t = make_tenant("unk")
    with pytest.raises(TenantError, match="No addon called “nope” is installed"):
        platform.tenants.set_addon(t.slug, "nope", True)


def test_a_hook_implementation_nobody_offers_is_reported(caplog):
    """A renamed hook (smsgw_message_event became smsgw_message_events) or a typo must not fail
    silently: the shipped addons implement none, and a stray one is named."""
    import logging

    import pluggy

    from core.addons import AddonRegistry

    registry = AddonRegistry()
    assert registry.unknown_hooks == []

    class Stale:
        @pluggy.HookimplMarker("smsgw")
        def smsgw_message_event(self, tenant, event, data):
            pass

    registry.pm.register(Stale(), name="stale-addon")
    with caplog.at_level(logging.WARNING, logger="core.addons"):
        assert registry._unknown_hooks() == [("stale-addon", "smsgw_message_event")]
    assert "stale-addon implements smsgw_message_event" in caplog.text
