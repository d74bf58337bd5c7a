"""Baseline for ``bench_devices.py``: a bare asyncio server that holds connections and never answers.

It accepts connections, reads each request's head, then waits on the socket
(for more bytes or the client hanging up) without ever answering: the least a
Python asyncio server can do per waiting long poll. ``--mode streams`` (the
default) gives each connection a coroutine (``asyncio.start_server``), like a
handler awaiting a wake-up; ``--mode protocol`` is a plain ``asyncio.Protocol``;
``--mode tornado`` is Tornado's own ``HTTPServer`` with a message delegate that
never answers (no ``RequestHandler``): the least a Tornado server holds per
waiting request, i.e. the floor for anything built on Tornado.

``--keepalive SECONDS`` (streams mode) answers each request with the head of an event stream
(``200``, ``text/event-stream``, chunked) and then writes a ``:keepalive`` comment to every
connection once per SECONDS, spread over that many one-second turns by one timer: the least a
Python asyncio server does to keep event streams alive, the floor for ``bench_sse.py``.

Usage: ``python bench/_bare_hold_server.py PORT STATUS_FILE [--mode streams|protocol|tornado]
[--keepalive SECONDS]``.
Writes the number of requests read so far to STATUS_FILE (at most 5 times a second,
only when it changed). Stops on SIGTERM / SIGINT.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import signal

held = 0


STREAM_HEAD = (b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n"
               b"Transfer-Encoding: chunked\r\n\r\n")
KEEPALIVE_CHUNK = b"c\r\n:keepalive\n\n\r\n"  # 12 bytes of comment, chunked


class Ticker:
    """One timer: each second, a keepalive to the writers of one of ``every`` turns."""

    def __init__(self, every: int):
        self.turns = [set() for _ in range(every)]
        self.next = 0
        self.tick = 0
        asyncio.get_running_loop().call_later(1.0, self.fire)

    def add(self, writer) -> int:
        turn, self.next = self.next, (self.next + 1) % len(self.turns)
        self.turns[turn].add(writer)
        return turn

    def fire(self) -> None:
        self.tick += 1
        for writer in self.turns[self.tick % len(self.turns)]:
            writer.write(KEEPALIVE_CHUNK)
        asyncio.get_running_loop().call_later(1.0, self.fire)


async def main(port: int, status_file: str, mode: str, keepalive: int = 0) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    loop = asyncio.get_running_loop()

    if mode == "streams":
        ticker = Ticker(keepalive) if keepalive else None

        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
            global held
            turn = None
            try:
                await reader.readuntil(b"\r\n\r\n")
                held += 1
                if ticker is not None:
                    writer.write(STREAM_HEAD)
                    turn = ticker.add(writer)
                while await reader.read(4096):  # never answer; end when the client hangs up
                    pass
            except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
                pass
            finally:
                if turn is not None:
                    ticker.turns[turn].discard(writer)
                writer.close()

        server = await asyncio.start_server(handle, "127.0.0.1", port, backlog=4096)
    elif mode == "tornado":
        import tornado.httpserver
        import tornado.httputil
        import tornado.netutil

        class Parked(tornado.httputil.HTTPMessageDelegate):
            def finish(self):
                global held
                held += 1  # the request is read; it is never answered

        class Delegate(tornado.httputil.HTTPServerConnectionDelegate):
            def start_request(self, server_conn, request_conn):
                return Parked()

        server = tornado.httpserver.HTTPServer(Delegate())
        server.add_sockets(tornado.netutil.bind_sockets(port, "127.0.0.1", backlog=4096))
    else:
        class Hold(asyncio.Protocol):
            def __init__(self):
                self.buf = b""
                self.counted = False
                self.transport = None

            def connection_made(self, transport):
                self.transport = transport

            def data_received(self, data):
                global held
                if not self.counted:
                    self.buf += data
                    if b"\r\n\r\n" in self.buf:
                        self.counted = True
                        self.buf = b""
                        held += 1

            def connection_lost(self, exc):
                pass

        server = await loop.create_server(Hold, "127.0.0.1", port, backlog=4096)

    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    last = -1

    async def report():
        nonlocal last
        while True:
            if held != last:
                last = held
                tmp = status_file + ".tmp"
                with open(tmp, "w") as f:
                    f.write(str(held))
                os.replace(tmp, status_file)
            await asyncio.sleep(0.2)

    reporter = asyncio.ensure_future(report())
    await stop.wait()
    reporter.cancel()
    server.stop() if mode == "tornado" else server.close()


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("port", type=int)
    p.add_argument("status_file")
    p.add_argument("--mode", choices=("streams", "protocol", "tornado"), default="streams")
    p.add_argument("--keepalive", type=int, default=0, help="streams mode: answer as an event stream and write a "
                   "keepalive comment to each connection every SECONDS (default 0: never answer)")
    a = p.parse_args()
    asyncio.run(main(a.port, a.status_file, a.mode, a.keepalive))
