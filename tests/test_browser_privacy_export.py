"""Account → Privacy → Export, in Chromium on a laptop and on a phone screen: the Customer asks
for the workspace's export, watches it being prepared (the page polls its state and reloads
when it is ready, no reload by hand), and downloads the zip."""

from __future__ import annotations

import json
import zipfile

import pytest

from core.tasks import EmbeddedConsumer
from tests.support.browser import browser_page, chromium, page_problems  # noqa: F401
from tests.support.browser import address, overflowing  # noqa: F401
from tests.support.devices import submit as send
from tests.support.identity import OWNER_PASSWORD, audit_rows, owner_email
from tests.support.phones import api_client

pytestmark = pytest.mark.browser


@pytest.mark.parametrize("width, height", [(1280, 800), (390, 844)])
def test_export_the_workspace_watch_it_and_download_it(browser_page, live_server, platform, make_tenant, tmp_path,
                                                        width, height):
    page = browser_page
    page.set_viewport_size({"width": width, "height": height})
    t = make_tenant("exportweb")
    send(api_client(live_server, t.slug), ["+14155550161"], text="a message to find in the export")

    page.goto(address(live_server, t.slug, "/login"))
    page.fill("#f-email", owner_email(t))
    page.fill("#f-password", OWNER_PASSWORD)
    with page.expect_navigation():
        page.click("main form button[type=submit]")
    page.goto(address(live_server, t.slug, "/account/privacy"))
    assert page.get_by_role("button", name="Export my data").is_visible()
    with page.expect_navigation():
        page.get_by_role("button", name="Export the whole workspace").click()
    row = page.locator("tr[data-export]")
    assert row.count() == 1 and row.get_attribute("data-state") == "queued"
    assert page.get_by_text("Refresh to see the progress").is_visible()  # without JS: a link
    assert overflowing(page) == []

    # A worker picks it up; the page follows by itself and shows the link when it is ready.
    platform.setup_tasks()
    consumer = EmbeddedConsumer(platform.huey, workers=1, worker_type="thread", periodic=False,
                                check_worker_health=False, max_delay=0.1, initial_delay=0.05)
    consumer.start()
    try:
        link = page.get_by_role("link", name="Download")
        link.wait_for(state="visible", timeout=30_000)
    finally:
        consumer.stop(graceful=True)
    assert page.locator("tr[data-export]").get_attribute("data-state") == "ready"
    assert overflowing(page) == []

    with page.expect_download() as info:
        link.click()
    target = tmp_path / "export.zip"
    info.value.save_as(target)
    with zipfile.ZipFile(target) as zf:
        manifest = json.loads(zf.read("manifest.json"))
        messages = json.loads(zf.read("messages.json"))
    assert manifest["subject"]["kind"] == "workspace" and manifest["workspace"]["slug"] == t.slug
    assert [m["text"] for m in messages["rows"]] == ["a message to find in the export"]
    assert [e["target"] for e in audit_rows(platform, t.id, "privacy.export.downloaded")] == \
        [f"privacy_export:{manifest_export_id(page)}"]
    # Chromium reports the navigation that became a download as aborted: that one is expected.
    assert page_problems(page, allow=(f"/exports/{manifest_export_id(page)}/download?key=",)) == []


def manifest_export_id(page) -> int:
    return int(page.locator("tr[data-export]").get_attribute("data-export"))
