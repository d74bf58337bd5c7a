"""The app's whole protocol over real TLS: ``smsgw serve --certfile --keyfile`` (a real second
process on this session's database) with a certificate made at test time, which the client
verifies (host names and the chain), as the release app, which refuses cleartext, does."""

from __future__ import annotations

import http.client
import json
import ssl
import time

from core.db import tenant_transaction
from tests.support.devices import phone, sql
from tests.support.mobile_app import AppPhone, gson_date
from tests.support.phones import api_token
from tests.support.serve import start_serve, stop_serve
from tests.support.tls import self_signed_certificate

from addons.mobile import service


def test_enroll_wake_pull_report_and_inbound_over_tls(platform, cli_env, make_tenant, tmp_path):
    t = make_tenant("apptls")
    host = f"{t.slug}.{platform.settings.base_domain}"
    certfile, keyfile = self_signed_certificate(tmp_path, names=(host,), addresses=("127.0.0.1",))
    proc, port, output = start_serve(dict(cli_env, SMSGW_BIND="127.0.0.1"), "--certfile", str(certfile),
                                     "--keyfile", str(keyfile))
    try:
        assert "https://" in output, output
        with tenant_transaction(t.ref):
            private, _row = service.create_enrollment(t.slug, "user:test", "tls", 1, 7)
        context = ssl.create_default_context(cafile=str(certfile))  # verifies the chain and the host name
        p = AppPhone(host, port, ssl_context=context)
        # Cleartext on the TLS port is no answer the app could take for one.
        plain = AppPhone(p.host, port)
        try:
            status = plain.register(private)[0]
        except Exception:
            status = None
        assert status != 201
        status, _h, body = p.register(private)
        assert status == 201, body
        assert p.patch_device()[0] == 204
        key = p.settings()[2]["webhooks"]["signing_key"]
        sql(t, "UPDATE devices SET settings = jsonb_set(settings, '{limits}', '{\"per_minute\": 0}') WHERE id = %s",
            (int(p.device_id),), fetch=False)

        stream = p.open_events()
        try:
            assert stream.status == 200 and stream.chunked
            token = api_token(t.slug)
            seen_status, _h, seen = p.call("GET", "/device")  # the app sees itself
            assert seen_status == 200 and seen["id"] == p.device_id
            c = http.client.HTTPSConnection("127.0.0.1", port, context=context, timeout=30)
            c.request("POST", "/api/v1/messages", body=json.dumps({"text": "over TLS", "to": [phone(40)]}),
                      headers={"Host": f"{p.host}:{port}", "Authorization": f"Bearer {token}",
                               "Content-Type": "application/json"})
            r = c.getresponse()
            message = json.loads(r.read())
            assert r.status == 202, message
            assert stream.next_event(timeout=15)[0] == "MessageEnqueued"
        finally:
            stream.close()
        [m] = p.messages()[2]
        assert m["textMessage"]["text"] == "over TLS"
        assert p.report([{"id": m["id"], "state": "Delivered", "recipients": [],
                          "states": {"Sent": gson_date(), "Delivered": gson_date()}}])[0] == 204
        assert sql(t, "SELECT state FROM recipients WHERE id = %s", (int(m["id"]),)) == [("delivered",)]
        payload = {"messageId": "tls-in", "message": "hi", "phoneNumber": phone(41), "receivedAt": gson_date()}
        path = f"/api/mobile/v1/ingest/{p.device_id}"
        assert p.webhook(path, "sms:received", payload, key) == 204
        assert p.webhook(path, "sms:received", payload, key, timestamp=int(time.time()) - 900) == 401
        assert sql(t, "SELECT body FROM device_inbound") == [("hi",)]
    finally:
        stop_serve(proc)
