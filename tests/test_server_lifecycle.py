"""The tests' web server is production's: the same lifecycle (core.server.ServerRuntime) on the
same event loop (uvloop), so what the suite proves holds for ``smsgw serve``."""

from __future__ import annotations

import uvloop

from core.server import ServerRuntime


def test_the_test_server_runs_on_uvloop_through_the_production_lifecycle(live_server):
    assert isinstance(live_server.loop, uvloop.Loop), type(live_server.loop)
    assert isinstance(live_server.runtime, ServerRuntime)
    assert live_server.platform.wakeups.loop is live_server.loop  # the wake-up hub waits on it too
    assert live_server.client().get("/health/live").status_code == 200
