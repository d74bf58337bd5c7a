"""``smsgw-companion``: pair this phone with a workspace, then run it."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import time
import uuid
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

from .backends import make_backend
from .client import NetworkError, ServerError
from .outbox import Outbox
from .state import State, default_dir


def parse_pairing(target: str, code: str | None) -> tuple[str, str]:
    """Accept ``URL CODE`` or the QR content ``smsgw://pair?url=...&code=...``."""
    if target.startswith("smsgw://"):
        q = parse_qs(urlsplit(target).query)
        if "url" not in q or "code" not in q:
            raise ValueError("the QR content lacks url or code")
        return unquote(q["url"][0]), q["code"][0]
    if not code:
        raise ValueError("give the pairing code after the server URL")
    if not target.startswith(("http://", "https://")):
        raise ValueError("the server URL must start with https:// (or http:// on a LAN)")
    return target, code


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="smsgw-companion",
                                description="Send and receive SMS for your SMS gateway workspace from this phone.")
    p.add_argument("--state-dir", type=Path, default=None, help="where the token and outbox live "
                                                                "(default ~/.smsgw-companion)")
    p.add_argument("-v", "--verbose", action="store_true")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    pr = sub.add_parser("pair", help="pair with a workspace using the code from its dashboard")
    pr.add_argument("target", help="the workspace URL (https://acme.example.com) or the QR code's content")
    pr.add_argument("code", nargs="?", help="the 8-character pairing code")
    pr.add_argument("--name", help="how the dashboard should call this phone")
    pr.add_argument("--backend", default="termux", choices=("termux", "simulator"))
    pr.add_argument("--connect-to", metavar="HOST[:PORT]",
                    help="connect to this address but keep the workspace's host name (LANs without DNS)")
    r = sub.add_parser("run", help="start sending and receiving (Ctrl-C stops)")
    r.add_argument("--backend", default="termux", choices=("termux", "simulator"))
    r.add_argument("--wait", type=int, default=30, help="long-poll seconds (server caps at 60)")
    r.add_argument("--sim-latency", type=float, default=0.2, help="simulator: seconds to send")
    r.add_argument("--sim-failure-rate", type=float, default=0.0, help="simulator: share of sends that fail")
    r.add_argument("--sim-delivery-delay", type=float, default=1.0, help="simulator: seconds until delivered")
    r.add_argument("--sim-inbound-per-minute", type=float, default=0.0, help="simulator: random inbound SMS")
    st = sub.add_parser("set-token", help="use a device token rotated from the dashboard")
    st.add_argument("token")
    sub.add_parser("status", help="show pairing and what waits in the outbox")
    sr = sub.add_parser("sim-receive", help="simulator: make this phone receive an SMS (a reply, in a demo); "
                                            "the running companion uploads it")
    sr.add_argument("--from", dest="sender", required=True, metavar="NUMBER", help="who sent it, e.g. +14155550123")
    sr.add_argument("body", help="the text of the SMS")
    sr.add_argument("--sim-slot", type=int, default=1, choices=(1, 2, 3, 4))
    return p


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(message)s")
    state_dir = args.state_dir or default_dir()
    if args.command == "pair":
        from .runner import pair

        try:
            url, code = parse_pairing(args.target, args.code)
            state = pair(state_dir, url, code, make_backend(args.backend), name=args.name,
                         connect_to=args.connect_to)
        except ValueError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        except ServerError as exc:
            print(f"error: the server refused the code: {exc.problem.get('detail', exc)}", file=sys.stderr)
            return 1
        except NetworkError as exc:
            print(f"error: cannot reach {args.target}: {exc}. Check the address and the network.", file=sys.stderr)
            return 1
        print(f"Paired as device {state.device_id} with {state.server_url}. Now run: smsgw-companion run")
        return 0
    if args.command == "set-token":
        state = State.load(state_dir)
        state.token = args.token.strip()
        state.save(state_dir)
        print("Token saved.")
        return 0
    if args.command == "status":
        state = State.load(state_dir)
        if not state.paired:
            print("Not paired. Run: smsgw-companion pair URL CODE")
            return 1
        counts = Outbox(state_dir / "outbox.sqlite3").counts()
        print(f"Paired with {state.server_url} as device {state.device_id}; settings v{state.settings_version}; "
              f"waiting to upload: {counts['reports']} report(s), {counts['inbound']} inbound SMS.")
        return 0
    if args.command == "sim-receive":
        return sim_receive(state_dir, args.sender, args.body, args.sim_slot)
    from .runner import Companion

    options = {}
    if args.backend == "simulator":
        options = dict(send_latency=args.sim_latency, failure_rate=args.sim_failure_rate,
                       delivery_delay=args.sim_delivery_delay, inbound_per_minute=args.sim_inbound_per_minute)
    else:
        options = dict(watermark_path=str(state_dir / "inbox-watermark"))
    try:
        companion = Companion(state_dir, make_backend(args.backend, **options), wait=args.wait)
    except RuntimeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, lambda *_: companion.stop_event.set())
    print(f"Running with the {args.backend} backend against {companion.state.server_url}. Ctrl-C stops.")
    companion.run_forever()
    if companion.fatal:
        print(f"error: {companion.fatal}", file=sys.stderr)
        return 1
    print("Stopped; anything not yet uploaded stays in the outbox for next time.")
    return 0


def sim_receive(state_dir: Path, sender: str, body: str, sim_slot: int) -> int:
    """Put an SMS in the outbox as if the phone had received it; ``run`` uploads it."""
    state = State.load(state_dir)
    if not state.paired:
        print("Not paired. Run: smsgw-companion pair URL CODE", file=sys.stderr)
        return 1
    sender = sender.strip()
    if not sender or len(sender) > 64 or len(body) > 10_000:
        print("error: give the sender (up to 64 characters) and a text of up to 10,000 characters", file=sys.stderr)
        return 2
    outbox = Outbox(state_dir / "outbox.sqlite3")
    try:
        outbox.add_inbound(f"sim-cli-{uuid.uuid4().hex}", sender, body, time.time(), sim_slot)
    finally:
        outbox.close()
    print(f"Received from {sender}. A running `smsgw-companion run` uploads it within a few seconds.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
