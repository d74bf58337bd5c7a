import statistics, time
from tests.support.identity import client, fetch_xsrf

def loop(c, n=300, **kw):
    out = []
    for _ in range(n):
        t = time.perf_counter(); r = c.get("/", **kw); out.append((time.perf_counter() - t) * 1000)
        assert r.status_code == 200
    out.sort()
    return f"median {statistics.median(out):.2f} ms  p95 {out[int(len(out)*.95)]:.2f} ms"

def test_latency(live_server, platform):
    c = client(live_server); c.get("/")
    plugin = platform.registry.pm.get_plugin("cookies")
    for round_ in range(2):
        platform.registry.pm.unregister(name="cookies")
        print(f"\nround {round_} without the addon:      ", loop(client(live_server)))
        platform.registry.pm.register(plugin, name="cookies")
        print(f"round {round_} banner (undecided):       ", loop(client(live_server)))
        e = client(live_server); token = fetch_xsrf(e, "/")
        e.post("/cookies/consent", data={"_xsrf": token, "choice": "essential", "next": "/"})
        print(f"round {round_} essential:                ", loop(e))
        a = client(live_server); token = fetch_xsrf(a, "/")
        a.post("/cookies/consent", data={"_xsrf": token, "choice": "analytics", "next": "/"})
        print(f"round {round_} analytics (row per view): ", loop(a))
