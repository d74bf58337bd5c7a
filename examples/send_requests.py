#!/usr/bin/env python3
"""Send one SMS through the native API with Python ``requests``, then follow its state.

    SMSGW_URL=https://acme.example.com SMSGW_TOKEN=sgw_... SMSGW_TO=+14155550100 python send_requests.py
"""

import os
import sys
import time
import uuid

import requests

HELP = """Set these environment variables first:
  SMSGW_URL    your workspace's address, e.g. https://acme.example.com
               (the main domain works too: an API token names its workspace)
  SMSGW_TOKEN  an API token with the messages:send and messages:read scopes (dashboard -> API tokens)
  SMSGW_TO     the recipient, e.g. +14155550100
Optional:
  SMSGW_TEXT   the text (default: "Hello from smsgw")
  SMSGW_WAIT   seconds to follow the message until it is delivered or failed (default: 0, don't wait)"""

FINAL = {"delivered", "failed", "expired", "cancelled"}


def main() -> int:
    url, token, to = (os.environ.get(k, "").strip() for k in ("SMSGW_URL", "SMSGW_TOKEN", "SMSGW_TO"))
    if not (url and token and to):
        print(HELP, file=sys.stderr)
        return 2
    api = requests.Session()
    api.headers["Authorization"] = f"Bearer {token}"
    r = api.post(f"{url.rstrip('/')}/api/v1/messages", timeout=30,
                 json={"to": [to], "text": os.environ.get("SMSGW_TEXT", "Hello from smsgw")},
                 # Safe to retry: the same key never sends twice.
                 headers={"Idempotency-Key": str(uuid.uuid4())})
    if r.status_code != 202:
        print(f"Refused ({r.status_code}): {r.text}", file=sys.stderr)
        return 1
    message = r.json()
    print(f"accepted: message {message['id']} is {message['state']}")
    deadline = time.monotonic() + float(os.environ.get("SMSGW_WAIT", "0") or 0)
    state = message["state"]
    while state not in FINAL and time.monotonic() < deadline:
        time.sleep(0.5)
        message = api.get(f"{url.rstrip('/')}/api/v1/messages/{message['id']}", timeout=30).json()
        if message["state"] != state:
            state = message["state"]
            print(f"message {message['id']} is {state}")
    for recipient in message["recipients"]:
        print(f"  {recipient['phone']}: {recipient['state']}"
              + (f" ({recipient['error_code']})" if recipient.get("error_code") else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
