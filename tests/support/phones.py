"""Real simulated phones for tests: pair through the API, run the real companion code."""

from __future__ import annotations

import itertools
from pathlib import Path

from android_companion.backends.simulator import SimulatorBackend
from android_companion.runner import Companion, pair

from core.db import tenant_transaction
from core.identity import create_api_token
from core.tenancy import load_tenant

ALL_SCOPES = ["messages:send", "messages:read", "devices:read", "devices:write", "webhooks:read",
              "webhooks:write", "settings:write"]
_counter = itertools.count(1)


def api_token(slug: str, scopes=None) -> str:
    tenant = load_tenant(slug)
    with tenant_transaction(tenant.ref):
        _, token = create_api_token(slug, f"test token {next(_counter)}", scopes or ALL_SCOPES, None)
    return token


def api_client(live_server, slug: str, scopes=None):
    """A requests session on the tenant's host, authenticated with a fresh API token."""
    client = live_server.client(slug)
    client.headers["Authorization"] = f"Bearer {api_token(slug, scopes)}"
    return client


def pair_phone(live_server, slug: str, state_dir: Path, backend=None, name=None, client=None):
    """Create a pairing code through the API and pair the real companion with it."""
    client = client or api_client(live_server, slug)
    r = client.post("/api/v1/devices/pairing-codes", json={})
    r.raise_for_status()
    backend = backend or SimulatorBackend()
    url = f"http://{slug}.{live_server.platform.settings.base_domain}:{live_server.port}"
    state = pair(Path(state_dir), url, r.json()["code"], backend, name=name,
                 connect_to=f"127.0.0.1:{live_server.port}")
    return state, backend


def start_phone(live_server, slug: str, state_dir: Path, backend=None, wait: int = 5, **kwargs) -> Companion:
    """Pair and start a simulated phone; call ``.stop()`` when done."""
    _, backend = pair_phone(live_server, slug, state_dir, backend)
    options = dict(heartbeat_interval=60.0, inbound_interval=0.1, flush_interval=0.2, backoff_cap=2.0)
    options.update(kwargs)
    return Companion(Path(state_dir), backend, wait=wait, **options).start()
