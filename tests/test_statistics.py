"""*Statistics* (issue 22, item 3): messages per day, per phone and per SIM over a chosen date
range, from the usage counts, as charts, tables and CSV; a date it cannot use is said on the page."""

from __future__ import annotations

import csv
import io
import re

from core.clock import utcnow
from tests.support.identity import owner_email, sign_in
from tests.support.messaging import raw_device
from tests.support.phones import api_client


def test_statistics_per_phone_and_sim_over_a_range_and_as_csv(live_server, make_tenant, tmp_path):
    t = make_tenant("stat")
    api = api_client(live_server, t.slug)
    shop = raw_device(live_server, t.slug, tmp_path / "a", client=api, name="Shop")
    till = raw_device(live_server, t.slug, tmp_path / "b", client=api, name="=Till")
    for to, sim in (("+14155550101", 2), ("+14155550102", None)):
        body = {"to": [to], "text": "hi", "device_id": shop.device_id}
        if sim:
            body["sim_slot"] = sim
        assert api.post("/api/v1/messages", json=body).status_code == 202
    work = shop.fetch()
    assert len(work) == 2
    assert shop.report(*({"message_id": w["id"], "state": "delivered"} for w in work)).status_code == 200
    assert api.post("/api/v1/messages", json={"to": ["+14155550103"], "text": "x",
                                              "device_id": till.device_id}).status_code == 202
    [w] = till.fetch()
    assert till.report({"message_id": w["id"], "state": "failed", "error_code": "RESULT_ERROR_GENERIC_FAILURE"}
                       ).status_code == 200

    owner = sign_in(live_server, t.slug, owner_email(t))
    page = owner.get("/overview")
    assert page.status_code == 200
    phones = dict(re.findall(r'<tr data-device="\d+"><th scope="row">([^<]+)</th><td>\d+</td><td>(\d+)</td>', page.text))
    assert phones == {"Shop": "2", "=Till": "0"}
    assert "All phones" in page.text and "<svg" in page.text
    sims = re.findall(r'<tr data-sim="\d+-(sim\d|)"><th scope="row">([^<]+)</th><td>[^<]+</td><td>(\d+)</td><td>(\d+)</td>',
                      page.text)
    assert sorted(sims) == [("", "=Till", "0", "0"), ("", "Shop", "1", "1"), ("sim2", "Shop", "1", "1")]
    assert 'data-figure="rate">66.7 %' in page.text
    # Per SIM as a chart too: a bar for each phone and SIM.
    sim_chart = re.search(r'<figcaption>Sent per SIM</figcaption>.*?</svg>', page.text, re.S)
    assert sim_chart, "no chart per SIM"
    assert sorted(re.findall(r"<title>([^<]+): (\d+)</title>", sim_chart.group(0))) == [
        ("=Till · phone&#39;s choice", "0"), ("Shop · SIM 2", "1"), ("Shop · phone&#39;s choice", "1")]

    today = utcnow().date().isoformat()
    r = owner.get(f"/overview.csv?from={today}&to={today}")
    assert r.status_code == 200 and r.headers["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert {(row["device"], row["sim"], row["delivered"], row["failed"]) for row in rows if row["device_id"] != "0"} \
        == {("Shop", "sim2", "1", "0"), ("Shop", "", "1", "0"), ("'=Till", "", "0", "1")}

    # A range that ends yesterday has none of today's work.
    r = owner.get("/overview?from=2020-01-01&to=2020-01-31")
    assert r.status_code == 200 and 'data-figure="sent">0<' in r.text

    # A range it cannot use is said on the page (the default range is shown), not a bare error.
    for bad in ("from=yesterday", "from=2026-02-01&to=2026-01-01", "from=2020-01-01&to=2026-01-01"):
        r = owner.get(f"/overview?{bad}")
        assert r.status_code == 422 and 'id="statistics-error"' in r.text and 'data-figure="failed">1<' in r.text, bad
