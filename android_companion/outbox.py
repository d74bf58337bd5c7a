"""A local SQLite outbox: every status report and inbound SMS stays here until the server acknowledges it.

Network drops, crashes and restarts lose nothing; the server deduplicates, so
sending twice is harmless. It also remembers which messages this phone already
handed to the radio, so a message the server hands out again is reported, not
sent twice, and keeps the send log used for local rate limits.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

SCHEMA = """
CREATE TABLE IF NOT EXISTS reports (
    id INTEGER PRIMARY KEY AUTOINCREMENT, message_id INTEGER NOT NULL, recipient TEXT,
    state TEXT NOT NULL, error_code TEXT, at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS inbound (
    phone_id TEXT PRIMARY KEY, sender TEXT NOT NULL, body TEXT NOT NULL, received_at REAL NOT NULL,
    sim_slot INTEGER, acked INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS handled (
    message_id INTEGER PRIMARY KEY, outcome TEXT NOT NULL, error_code TEXT, at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS send_log (at REAL NOT NULL);
CREATE INDEX IF NOT EXISTS send_log_at ON send_log (at);
"""


class Outbox:
    def __init__(self, path: Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(str(self.path), check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(SCHEMA)

    def close(self):
        with self._lock:
            self._db.close()

    # -- reports --------------------------------------------------------------
    def add_report(self, message_id: int, state: str, error_code: str | None = None,
                   recipient: str | None = None, at: float | None = None) -> None:
        with self._lock:
            self._db.execute("INSERT INTO reports (message_id, recipient, state, error_code, at) VALUES (?,?,?,?,?)",
                             (message_id, recipient, state, error_code, at or time.time()))

    def pending_reports(self, limit: int = 200) -> list[tuple[int, dict]]:
        with self._lock:
            rows = self._db.execute("SELECT id, message_id, recipient, state, error_code, at FROM reports "
                                    "ORDER BY id LIMIT ?", (limit,)).fetchall()
        return [(r[0], {"message_id": r[1], "recipient": r[2], "state": r[3], "error_code": r[4],
                        "at": int(r[5] * 1000)}) for r in rows]

    def ack_reports(self, ids: list[int]) -> None:
        with self._lock:
            self._db.executemany("DELETE FROM reports WHERE id = ?", [(i,) for i in ids])

    # -- inbound ----------------------------------------------------------------
    def add_inbound(self, phone_id: str, sender: str, body: str, received_at: float, sim_slot=None) -> bool:
        with self._lock:
            cur = self._db.execute("INSERT OR IGNORE INTO inbound (phone_id, sender, body, received_at, sim_slot) "
                                   "VALUES (?,?,?,?,?)", (phone_id, sender, body, received_at, sim_slot))
            return cur.rowcount == 1

    def pending_inbound(self, limit: int = 200) -> list[dict]:
        with self._lock:
            rows = self._db.execute("SELECT phone_id, sender, body, received_at, sim_slot FROM inbound "
                                    "WHERE acked = 0 ORDER BY received_at LIMIT ?", (limit,)).fetchall()
        return [{"id": r[0], "from": r[1], "body": r[2], "received_at": int(r[3] * 1000), "sim_slot": r[4]}
                for r in rows]

    def ack_inbound(self, phone_ids: list[str]) -> None:
        with self._lock:
            self._db.executemany("UPDATE inbound SET acked = 1 WHERE phone_id = ?", [(i,) for i in phone_ids])

    def known_inbound(self, phone_id: str) -> bool:
        with self._lock:
            return self._db.execute("SELECT 1 FROM inbound WHERE phone_id = ?", (phone_id,)).fetchone() is not None

    # -- what was already sent ----------------------------------------------------
    def handled(self, message_id: int):
        with self._lock:
            row = self._db.execute("SELECT outcome, error_code FROM handled WHERE message_id = ?",
                                   (message_id,)).fetchone()
        return row

    def mark_handled(self, message_id: int, outcome: str, error_code: str | None = None) -> None:
        with self._lock:
            self._db.execute("INSERT OR REPLACE INTO handled (message_id, outcome, error_code, at) VALUES (?,?,?,?)",
                             (message_id, outcome, error_code, time.time()))

    # -- rate limits ----------------------------------------------------------------
    def log_send(self, at: float | None = None) -> None:
        with self._lock:
            self._db.execute("INSERT INTO send_log (at) VALUES (?)", (at or time.time(),))
            self._db.execute("DELETE FROM send_log WHERE at < ?", (time.time() - 86400,))

    def sends_since(self, seconds: float) -> int:
        with self._lock:
            return self._db.execute("SELECT count(*) FROM send_log WHERE at >= ?",
                                    (time.time() - seconds,)).fetchone()[0]

    def counts(self) -> dict:
        with self._lock:
            return {"reports": self._db.execute("SELECT count(*) FROM reports").fetchone()[0],
                    "inbound": self._db.execute("SELECT count(*) FROM inbound WHERE acked = 0").fetchone()[0]}
