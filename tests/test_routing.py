"""Host → tenant routing over real HTTP: unknown, suspended, slug rules, limits, headers."""

import time

import pytest

from core.tenancy import TenantError, validate_slug


def test_tenant_page_served_on_its_subdomain(live_server, make_tenant):
    t = make_tenant("web", name="Acme Widgets")
    r = live_server.client(t.slug).get("/")
    assert r.status_code == 200
    assert "Acme Widgets" in r.text


def test_unknown_subdomain_is_404_page_not_another_tenant(live_server, make_tenant):
    make_tenant("real", name="Real Tenant Ltd")
    r = live_server.client("does-not-exist").get("/")
    assert r.status_code == 404
    assert r.headers["Content-Type"].startswith("text/html")
    assert "There is no workspace at does-not-exist.localhost" in r.text
    assert "Real Tenant Ltd" not in r.text


def test_unknown_subdomain_api_answers_problem_json(live_server):
    r = live_server.client("nobody-here").get("/api/v1/anything")
    assert r.status_code == 404
    assert r.headers["Content-Type"] == "application/problem+json"
    body = r.json()
    assert body["code"] == "tenant-not-found" and body["status"] == 404
    assert body["type"].endswith("/tenant-not-found")


def test_suspended_tenant_is_refused_then_resumed(platform, live_server, make_tenant):
    t = make_tenant("susp")
    client = live_server.client(t.slug)
    assert client.get("/").status_code == 200
    platform.tenants.suspend(t.slug)
    r = client.get("/")
    assert r.status_code == 403
    assert "suspended" in r.text
    platform.tenants.resume(t.slug)
    assert client.get("/").status_code == 200


def test_cache_is_invalidated_across_processes_by_notify(platform, live_server, make_tenant):
    """A suspension made by another process (NOTIFY) reaches this process's cache."""
    import threading

    from core.notify import Listener
    from core.tenancy import TENANT_CHANNEL

    t = make_tenant("notif")
    client = live_server.client(t.slug)
    assert client.get("/").status_code == 200
    hit, _ = platform.tenant_cache.peek(t.slug)
    assert hit
    listener = Listener(platform.app_url)
    seen = threading.Event()
    listener.subscribe(TENANT_CHANNEL, lambda slug: (platform.tenant_cache.invalidate(slug), seen.set()))
    listener.start()
    try:
        assert listener.connected.wait(10)
        seen.clear()
        # Change the catalogue behind the cache's back, as another process would, and notify.
        import psycopg2
        conn = psycopg2.connect(platform.app_url)
        with conn, conn.cursor() as cur:
            cur.execute("UPDATE public.tenant SET status = 'suspended' WHERE slug = %s", (t.slug,))
            cur.execute("SELECT pg_notify(%s, %s)", (TENANT_CHANNEL, t.slug))
        conn.close()
        assert seen.wait(10)
        assert client.get("/").status_code == 403
    finally:
        listener.stop()
        platform.tenants.resume(t.slug)


@pytest.mark.parametrize("slug, fragment", [
    ("ab", "3 to 40"),
    ("a" * 41, "3 to 40"),
    ("Acme", "lowercase"),
    ("acme_co", "lowercase"),
    ("-acme", "start and end"),
    ("acme-", "start and end"),
    ("ac--me", "two hyphens"),
    ("www", "reserved"),
    ("admin", "reserved"),
    ("api", "reserved"),
    ("static", "reserved"),
    ("a'; drop table tenant; --", "lowercase"),
    ("", "Choose a subdomain"),
])
def test_bad_slugs_refused_with_clear_message(slug, fragment):
    with pytest.raises(TenantError, match=fragment):
        validate_slug(slug)


@pytest.mark.parametrize("slug", ["acme", "a1b", "my-company-2", "x" * 40])
def test_good_slugs_accepted(slug):
    assert validate_slug(slug) == slug


def test_bad_slug_creates_nothing(platform):
    before = platform.tenants.count()
    with pytest.raises(TenantError):
        platform.tenants.create("Bad Slug", "Bad", "a@b.example", "long enough password")
    assert platform.tenants.count() == before


def test_duplicate_slug_refused_and_first_tenant_intact(platform, make_tenant):
    t = make_tenant("dup", name="First Owner")
    with pytest.raises(TenantError, match="already taken"):
        platform.tenants.create(t.slug, "Second", "x@y.example", "long enough password")
    assert platform.tenants.get(t.slug).name == "First Owner"


def test_failed_creation_leaves_no_role_or_schema(platform):
    """A weak owner password is refused before anything is written."""
    import psycopg2

    slug = "weakpw-tenant"
    with pytest.raises(TenantError, match="at least 10"):
        platform.tenants.create(slug, "Weak", "a@b.example", "short")
    conn = psycopg2.connect(platform.admin_url)
    with conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM pg_namespace WHERE nspname = 't_weakpw_tenant'")
        assert cur.fetchone()[0] == 0
        cur.execute("SELECT count(*) FROM pg_roles WHERE rolname = %s", (platform.roles.tenant_role(slug),))
        assert cur.fetchone()[0] == 0
    conn.close()


def test_health_endpoints(live_server, make_tenant):
    t = make_tenant("health")
    for client in (live_server.client(None), live_server.client(t.slug)):
        live = client.get("/health/live")
        assert live.status_code == 200 and live.json() == {"status": "ok"}
        ready = client.get("/health/ready")
        assert ready.status_code == 200
        assert ready.json()["status"] == "ok"


def test_oversized_body_refused_with_problem(live_server, platform, make_tenant):
    t = make_tenant("big")
    limit = platform.settings.max_body_size
    r = live_server.client(t.slug).post("/api/v1/anything", data=b"x" * (limit + 1),
                                        headers={"Content-Type": "application/json"})
    assert r.status_code == 413
    assert r.headers["Content-Type"] == "application/problem+json"
    assert r.json()["code"] == "body-too-large"


def test_security_headers_on_every_response(live_server, make_tenant):
    t = make_tenant("hdr")
    for client, path in ((live_server.client(t.slug), "/"), (live_server.client(None), "/"),
                         (live_server.client("nope-nope"), "/"), (live_server.client(None), "/health/live"),
                         (live_server.client(None), "/static/core/app.css")):
        r = client.get(path)
        csp = r.headers["Content-Security-Policy"]
        for directive in ("object-src 'none'", "base-uri 'none'", "frame-ancestors 'none'"):
            assert directive in csp, (path, csp)
        assert r.headers["X-Content-Type-Options"] == "nosniff"
        assert "Referrer-Policy" in r.headers
        assert "Server" not in r.headers
        # Plain HTTP: no HSTS (it is sent only over TLS).
        assert "Strict-Transport-Security" not in r.headers


def test_platform_page_not_served_on_tenant_host_and_vice_versa(live_server, make_tenant):
    t = make_tenant("scope", name="Scoped Co")
    assert "Scoped Co" not in live_server.client(None).get("/").text
    assert "Send and receive SMS" not in live_server.client(t.slug).get("/").text


def test_unknown_path_is_404_page(live_server, make_tenant):
    t = make_tenant("nf")
    r = live_server.client(t.slug).get("/no/such/page")
    assert r.status_code == 404 and "There is no page at this address" in r.text


def test_static_theme_files_cannot_escape(live_server):
    c = live_server.client(None)
    assert c.get("/static/theme/default/theme.css").status_code == 200
    assert c.get("/static/theme/ocean/theme.css").status_code == 200
    for path in ("/static/theme/ocean/../ocean/templates/base.html", "/static/theme/ocean/%2e%2e/theme.txt",
                 "/static/theme/../core/config.py", "/static/core/../config.py"):
        assert c.get(path).status_code in (403, 404), path


def test_hostile_host_headers_do_not_500(live_server):
    import requests

    for host in ("a.b.localhost", "..localhost", "x" * 300 + ".localhost", "UPPER.localhost",
                 "'; select 1; --.localhost", "localhost:99999"):
        r = requests.get(live_server.url + "/", headers={"Host": host}, timeout=10, allow_redirects=False)
        assert r.status_code < 500, (host, r.status_code)


def test_a_finished_request_is_freed_without_the_cycle_collector(live_server, make_tenant):
    """The detaching delegate must not tie each request into a reference cycle: with the cycle
    collector off, a finished request's handler is gone as soon as it is answered."""
    import gc

    from core.web.base import BaseHandler
    from tests.support.phones import api_client

    t = make_tenant("nocycle")
    api = api_client(live_server, t.slug)
    assert api.get("/api/v1/messages").status_code == 200
    gc.collect()
    gc.disable()
    try:
        for _ in range(5):
            assert api.get("/api/v1/messages").status_code == 200
        time.sleep(0.2)
        left = [o for o in gc.get_objects() if isinstance(o, BaseHandler) and getattr(o, "tenant_slug", None) == t.slug]
    finally:
        gc.enable()
    assert left == []
