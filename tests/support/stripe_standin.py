"""A local stand-in for Stripe's API, on loopback, for the outbound half of the Stripe provider.

It is not Stripe: it answers the handful of calls the provider makes, each only if the request has
the shape Stripe's API documents (method, path, form fields, the secret key as bearer token), and
records every request. A request of another shape is answered 400 like Stripe would and recorded
in ``problems``, so a test asserts both what was sent and that nothing unexpected was.
"""

from __future__ import annotations

import json
import re
import secrets
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit


class StripeStandIn:
    def __init__(self, secret_key: str):
        self.secret_key = secret_key
        self.requests: list[dict] = []
        self.problems: list[str] = []
        self.customers: dict[str, dict] = {}
        standin = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                standin._handle(self, "GET")

            def do_POST(self):
                standin._handle(self, "POST")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()

    def calls(self, path_prefix: str) -> list[dict]:
        return [r for r in self.requests if r["path"].startswith(path_prefix)]

    # -- the API -------------------------------------------------------------------------------
    def _handle(self, h, method: str) -> None:
        parts = urlsplit(h.path)
        length = int(h.headers.get("Content-Length") or 0)
        body = h.rfile.read(length).decode() if length else ""
        form = {k: v[0] for k, v in parse_qs(body if method == "POST" else parts.query).items()}
        record = {"method": method, "path": parts.path, "form": form,
                  "idempotency_key": h.headers.get("Idempotency-Key")}
        self.requests.append(record)
        if h.headers.get("Authorization") != f"Bearer {self.secret_key}":
            return self._error(h, 401, "no or wrong API key")
        try:
            status, answer = self._route(method, parts.path, form)
        except AssertionError as exc:
            return self._error(h, 400, f"{method} {parts.path}: {exc}")
        payload = json.dumps(answer).encode()
        h.send_response(status)
        h.send_header("Content-Type", "application/json")
        h.send_header("Content-Length", str(len(payload)))
        h.send_header("Request-Id", f"req_{secrets.token_hex(6)}")
        h.end_headers()
        h.wfile.write(payload)

    def _error(self, h, status: int, message: str) -> None:
        self.problems.append(message)
        payload = json.dumps({"error": {"type": "invalid_request_error", "message": message}}).encode()
        h.send_response(status)
        h.send_header("Content-Type", "application/json")
        h.send_header("Content-Length", str(len(payload)))
        h.end_headers()
        h.wfile.write(payload)

    def _route(self, method, path, form):
        if method == "POST" and path == "/v1/customers":
            assert form.get("metadata[tenant_id]", "").isdigit(), "metadata[tenant_id] missing"
            cid = f"cus_{secrets.token_hex(6)}"
            self.customers[cid] = form
            return 200, {"id": cid, "object": "customer", "email": form.get("email")}
        if method == "POST" and path == "/v1/checkout/sessions":
            assert form.get("customer") in self.customers, "unknown customer"
            assert form.get("success_url", "").startswith("http") and form.get("cancel_url", "").startswith("http")
            mode = form.get("mode")
            if mode == "payment":
                assert form.get("line_items[0][quantity]") == "1"
                assert int(form["line_items[0][price_data][unit_amount]"]) > 0
                assert re.fullmatch(r"[a-z]{3}", form["line_items[0][price_data][currency]"])
                assert form.get("metadata[invoice_id]", "").isdigit()
                assert form.get("payment_intent_data[setup_future_usage]") == "off_session"
                assert form.get("payment_intent_data[metadata][invoice_id]") == form["metadata[invoice_id]"]
            elif mode == "setup":
                assert form.get("payment_method_types[0]") == "card"
                assert "line_items[0][quantity]" not in form
            else:
                raise AssertionError(f"mode {mode!r}")
            sid = f"cs_test_{secrets.token_hex(6)}"
            return 200, {"id": sid, "object": "checkout.session", "mode": mode,
                         "url": f"https://checkout.stripe.test/c/pay/{sid}"}
        if method == "POST" and path == "/v1/billing_portal/sessions":
            assert form.get("customer") in self.customers and form.get("return_url", "").startswith("http")
            return 200, {"id": f"bps_{secrets.token_hex(6)}", "object": "billing_portal.session",
                         "url": "https://billing.stripe.test/p/session/x"}
        match = re.fullmatch(r"/v1/customers/(cus_\w+)/payment_methods", path)
        if method == "GET" and match:
            assert match.group(1) in self.customers and form.get("type") == "card"
            return 200, {"object": "list", "url": path, "has_more": False,
                         "data": [{"id": "pm_card_visa", "object": "payment_method", "type": "card"}]}
        if method == "POST" and path == "/v1/payment_intents":
            assert form.get("customer") in self.customers and form.get("payment_method") == "pm_card_visa"
            assert form.get("off_session") == "true" and form.get("confirm") == "true"
            assert int(form["amount"]) > 0 and form.get("metadata[invoice_id]", "").isdigit()
            return 200, {"id": f"pi_{secrets.token_hex(6)}", "object": "payment_intent", "status": "processing",
                         "amount": int(form["amount"]), "currency": form["currency"]}
        raise AssertionError("not a call the provider should make")
