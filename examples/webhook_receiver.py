#!/usr/bin/env python3
"""A tiny webhook receiver: verifies our Standard Webhooks signatures and prints each event.

    SMSGW_WEBHOOK_SECRET=whsec_... PORT=8000 python webhook_receiver.py

Uses the ``standardwebhooks`` package (pip install standardwebhooks), which checks the
signature (``webhook-signature``, either of two during a secret rotation) and rejects
messages whose ``webhook-timestamp`` is more than 5 minutes off.

Delivery is at least once: an event can arrive twice, always with the same ``webhook-id`` (a
retry after your answer was lost, a redelivery you asked for, or a worker that died while you
were answering). So handle each ``webhook-id`` once and answer 2xx to the repeats. This example
remembers the ids it handled in memory; a real receiver records them in its database, in the
same transaction as the work the event causes (a unique key on the id).
"""

import json
import os
import sys
import threading
from collections import OrderedDict
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from standardwebhooks.webhooks import Webhook, WebhookVerificationError

HELP = """Set these environment variables first:
  SMSGW_WEBHOOK_SECRET  the endpoint's signing secret (whsec_...), shown once when you create the
                        webhook (or rotate its secret) in the dashboard or the API
Optional:
  HOST                  address to listen on (default: 127.0.0.1)
  PORT                  port to listen on (default: 8000)"""


REMEMBER = 100_000  # ids kept: far more than arrive between an event and its last retry


def make_handler(verifier: Webhook):
    handled: OrderedDict[str, None] = OrderedDict()
    lock = threading.Lock()

    class Receiver(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            try:
                event = verifier.verify(body, {k.lower(): v for k, v in self.headers.items()})
            except WebhookVerificationError as exc:
                print(f"REJECTED {self.headers.get('webhook-id')}: {exc}", flush=True)
                self.send_response(401)
                self.end_headers()
                return
            webhook_id = self.headers["webhook-id"]
            kind = event.get("type") or event.get("event")  # ours, or the SMS Gateway for Android envelope
            data = event.get("data", event.get("payload"))
            with lock:  # deduplicate on webhook-id: a repeat is acknowledged, not handled again
                repeat = webhook_id in handled
                handled[webhook_id] = None
                if len(handled) > REMEMBER:
                    handled.popitem(last=False)
            if repeat:
                print(f"DUPLICATE {kind} {webhook_id}: already handled", flush=True)
            else:
                print(f"EVENT {kind} {webhook_id} {json.dumps(data, sort_keys=True)}", flush=True)
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args):
            pass

    return Receiver


def main() -> int:
    secret = os.environ.get("SMSGW_WEBHOOK_SECRET", "").strip()
    if not secret:
        print(HELP, file=sys.stderr)
        return 2
    host, port = os.environ.get("HOST", "127.0.0.1"), int(os.environ.get("PORT", "8000"))
    server = ThreadingHTTPServer((host, port), make_handler(Webhook(secret)))
    print(f"LISTENING http://{host}:{server.server_port}/", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
