"""A local stand-in for DNS: a name server on loopback (UDP) that answers TXT questions from a
dict the test fills, so the custom-domain check runs the production resolver
(:class:`addons.branding.domains.DnsResolver`, dnspython) against something real on the wire.

It checks each request's shape as the platform must send it: one question, class IN, type TXT,
for a name under ``_smsgw-challenge.``; anything else is answered REFUSED and recorded in
``bad_requests`` (a test asserts it stays empty).
"""

from __future__ import annotations

import socket
import threading

import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset


class LocalDnsStandIn:
    def __init__(self):
        self.records: dict[str, list[str]] = {}  # "name." → TXT strings
        self.questions: list[str] = []
        self.bad_requests: list[str] = []
        self.silent = False  # True: answer nothing (a DNS outage)
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.settimeout(0.2)
        self.port = self._sock.getsockname()[1]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="dns-standin", daemon=True)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def publish(self, name: str, *values: str) -> None:
        self.records[name.rstrip(".").lower() + "."] = list(values)

    def start(self) -> "LocalDnsStandIn":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(2)
        self._sock.close()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                wire, peer = self._sock.recvfrom(4096)
            except (socket.timeout, OSError):
                continue
            if self.silent:
                continue
            try:
                query = dns.message.from_wire(wire)
            except Exception as exc:  # noqa: BLE001 - anything unparsable is a bad request
                self.bad_requests.append(f"unparsable: {exc}")
                continue
            reply = dns.message.make_response(query)
            question = query.question[0] if len(query.question) == 1 else None
            name = question.name.to_text().lower() if question is not None else ""
            if (question is None or question.rdclass != dns.rdataclass.IN or question.rdtype != dns.rdatatype.TXT
                    or not name.startswith("_smsgw-challenge.")):
                self.bad_requests.append(repr(query.question))
                reply.set_rcode(dns.rcode.REFUSED)
            else:
                self.questions.append(name)
                values = self.records.get(name)
                if values is None:
                    reply.set_rcode(dns.rcode.NXDOMAIN)
                else:
                    reply.answer.append(dns.rrset.from_text_list(
                        question.name, 60, "IN", "TXT", ['"' + v.replace('"', '\\"') + '"' for v in values]))
                reply.flags |= dns.flags.AA
            self._sock.sendto(reply.to_wire(), peer)
