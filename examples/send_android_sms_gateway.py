#!/usr/bin/env python3
"""The same send through the ``android-sms-gateway`` client (pip install "android-sms-gateway[requests]").

Code written for SMS Gateway for Android needs one change: the base URL.

    SMSGW_URL=https://acme.example.com SMSGW_TOKEN=sgw_... SMSGW_TO=+14155550100 \\
        python send_android_sms_gateway.py
"""

import os
import sys
import time

from android_sms_gateway import client, domain
from android_sms_gateway.enums import ProcessState

HELP = """Set these environment variables first:
  SMSGW_URL       your workspace's address, e.g. https://acme.example.com
                  (the client talks to $SMSGW_URL/3rdparty/v1)
  SMSGW_TO        the recipient, e.g. +14155550100
and either
  SMSGW_TOKEN     an API token with the messages:send and messages:read scopes (works on the main domain too)
or
  SMSGW_LOGIN     your sign-in email, and
  SMSGW_PASSWORD  your password (Basic auth: only on your workspace's own address)
Optional:
  SMSGW_TEXT      the text (default: "Hello from smsgw")
  SMSGW_WAIT      seconds to follow the message until it is delivered or failed (default: 0)"""

FINAL = {ProcessState.Delivered, ProcessState.Failed, ProcessState.Cancelled}


def main() -> int:
    url, to = os.environ.get("SMSGW_URL", "").strip(), os.environ.get("SMSGW_TO", "").strip()
    token = os.environ.get("SMSGW_TOKEN", "").strip()
    login, password = os.environ.get("SMSGW_LOGIN", "").strip(), os.environ.get("SMSGW_PASSWORD", "")
    if not (url and to and (token or (login and password))):
        print(HELP, file=sys.stderr)
        return 2
    base_url = url.rstrip("/") + "/3rdparty/v1"
    # login=None and an API token as the password: the client sends "Authorization: Bearer <token>".
    api = client.APIClient(None, token, base_url=base_url) if token else client.APIClient(login, password,
                                                                                          base_url=base_url)
    message = domain.Message(phone_numbers=[to],
                             text_message=domain.TextMessage(text=os.environ.get("SMSGW_TEXT", "Hello from smsgw")),
                             with_delivery_report=True)
    with api:
        state = api.send(message)
        print(f"accepted: message {state.id} is {state.state.value}")
        deadline = time.monotonic() + float(os.environ.get("SMSGW_WAIT", "0") or 0)
        while state.state not in FINAL and time.monotonic() < deadline:
            time.sleep(0.5)
            now = api.get_state(state.id)
            if now.state != state.state:
                print(f"message {now.id} is {now.state.value}")
            state = now
        for recipient in state.recipients:
            print(f"  {recipient.phone_number}: {recipient.state.value}"
                  + (f" ({recipient.error})" if recipient.error else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
