"""Baseline for ``bench_devices.py``: a bare asyncio server that holds connections and never answers.

It accepts connections, reads each request's head, then waits on the socket
(for more bytes or the client hanging up) without ever answering: the least a
Python asyncio server can do per waiting long poll. ``--mode streams`` (the
default) gives each connection a coroutine (``asyncio.start_server``), like a
handler awaiting a wake-up; ``--mode protocol`` is a plain ``asyncio.Protocol``;
``--mode tornado`` is Tornado's own ``HTTPServer`` with a message delegate that
never answers (no ``RequestHandler``): the least a Tornado server holds per
waiting request, i.e. the floor for anything built on Tornado.

Usage: ``python bench/_bare_hold_server.py PORT STATUS_FILE [--mode streams|protocol|tornado]``.
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


async def main(port: int, status_file: str, mode: str) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    loop = asyncio.get_running_loop()

    if mode == "streams":
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
            global held
            try:
                await reader.readuntil(b"\r\n\r\n")
                held += 1
                while await reader.read(4096):  # never answer; end when the client hangs up
                    pass
            except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
                pass
            finally:
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
    a = p.parse_args()
    asyncio.run(main(a.port, a.status_file, a.mode))
