"""Live progress while a reseller enables an addon for many workspaces (issue 18): the job is
recorded in PostgreSQL with a row per workspace, updated as each is done; the console's script
starts it (202 and the job's address) and polls it; a failed workspace is named with its reason;
a browser without JavaScript gets the result at the end. Another reseller's job is a 404."""

from __future__ import annotations

import time

import pytest

from addons.resellers import jobs, service
from core.tenancy import load_tenant
from tests.support.identity import admin_sql, fetch_xsrf, post_form
from tests.support.resellers import customers_without, make_reseller, partner_sign_in

JSON = {"Accept": "application/json"}


@pytest.fixture
def seller(platform, live_server):
    reseller = make_reseller(platform, "jp", max_workspaces=10)
    made = customers_without(platform, reseller, "jp", 4)
    console = partner_sign_in(live_server, reseller)
    fetch_xsrf(console, f"/{reseller.slug}/addons")
    yield reseller, console, made
    for slug in made:
        platform.tenants.delete(slug)


def start(console, reseller, **form):
    return post_form(console, f"/{reseller.slug}/addons", {"addon": "contacts", "action": "enable", **form},
                     headers=JSON)


def wait(console, url, timeout=30.0):
    deadline = time.time() + timeout
    seen = []
    while True:
        job = console.get(url, headers=JSON).json()
        seen.append(job["done"] + job["failed"])
        if job["finished"] or time.time() > deadline:
            return job, seen
        time.sleep(0.05)


def test_the_script_s_job_shows_each_workspace_s_outcome_and_names_the_one_that_failed(platform, seller):
    reseller, console, (w1, w2, w3, w4) = seller
    admin_sql(platform, "UPDATE public.tenant_addon SET enabled = false WHERE tenant_id = %s AND addon = 'messaging'",
              (load_tenant(w3).id,))
    platform.tenant_cache.invalidate(w3)
    r = start(console, reseller, workspace=[w1, w2, w3, w4])
    assert r.status_code == 202, r.text[:300]
    url = r.json()["url"]
    assert url == f"/{reseller.slug}/addons/jobs/{r.json()['job']}"
    job, seen = wait(console, url)
    assert job["finished"] and (job["done"], job["failed"], job["total"]) == (3, 1, 4)
    assert seen == sorted(seen)  # it only moves forward
    states = {i["slug"]: (i["state"], i["error"]) for i in job["items"]}
    assert states[w3][0] == "failed" and "Enable messaging first" in states[w3][1]
    assert all(states[s] == ("done", "") for s in (w1, w2, w4))
    assert all("contacts" in load_tenant(s).enabled_addons for s in (w1, w2, w4))
    assert "contacts" not in load_tenant(w3).enabled_addons
    # The record is PostgreSQL's: a row per workspace, in the order asked.
    rows = admin_sql(platform, "SELECT slug, state FROM public.reseller_addon_job_item WHERE job_id = %s ORDER BY position",
                     (job["id"],), fetch=True)
    assert [r[0] for r in rows] == [w1, w2, w3, w4] and rows[2][1] == "failed"
    # Each workspace where it worked has it in its own audit trail (recorded after the answer too).
    deadline = time.time() + 10
    while time.time() < deadline and not admin_sql(platform, "SELECT 1 FROM public.audit_event WHERE tenant_id = %s AND "
                                                   "action = 'reseller.addon_enabled'", (load_tenant(w4).id,), fetch=True):
        time.sleep(0.1)
    assert admin_sql(platform, "SELECT count(*) FROM public.audit_event WHERE tenant_id = %s AND action = "
                     "'reseller.addon_enabled'", (load_tenant(w4).id,), fetch=True)[0][0] == 1


def test_without_javascript_the_same_job_answers_with_the_result_at_the_end(platform, seller):
    reseller, console, (w1, w2, _w3, _w4) = seller
    r = post_form(console, f"/{reseller.slug}/addons", {"addon": "contacts", "action": "enable", "workspace": [w1, w2]})
    assert r.status_code == 200 and f'<li class="done" data-slug="{w1}">' in r.text and "2 of 2 workspaces done." in r.text
    assert admin_sql(platform, "SELECT count(*) FROM public.reseller_addon_job j JOIN public.reseller_addon_job_item i "
                     "ON i.job_id = j.id WHERE j.reseller_id = %s AND i.state = 'done'", (reseller.id,), fetch=True)[0][0] == 2


@pytest.mark.parametrize("form, status", [
    ({"workspace": []}, 422),
    ({"addon": "webhooks", "workspace": ["x"]}, 404),
    ({"workspace": ["nobody-here"]}, 404),
    ({"workspace": ["../../etc"]}, 404),
])
def test_refused_requests_start_no_job(platform, seller, form, status):
    reseller, console, _made = seller
    r = start(console, reseller, **form)
    assert r.status_code == status and r.headers["Content-Type"].startswith("application/problem+json")
    assert admin_sql(platform, "SELECT count(*) FROM public.reseller_addon_job WHERE reseller_id = %s", (reseller.id,),
                     fetch=True)[0][0] == 0


def test_another_reseller_cannot_read_a_job(platform, live_server, seller):
    reseller, console, (w1, *_rest) = seller
    r = start(console, reseller, workspace=[w1])
    job_id = r.json()["job"]
    wait(console, r.json()["url"])
    other = make_reseller(platform, "jq")
    theirs = partner_sign_in(live_server, other)
    assert theirs.get(f"/{other.slug}/addons/jobs/{job_id}", headers=JSON).status_code == 404
    assert theirs.get(f"/{reseller.slug}/addons/jobs/{job_id}", headers=JSON).status_code in (302, 401, 403, 404)
    assert jobs.get(other.id, job_id) is None and jobs.get(reseller.id, job_id)["total"] == 1
    assert console.get(f"/{reseller.slug}/addons/jobs/99999999999", headers=JSON).status_code == 404
