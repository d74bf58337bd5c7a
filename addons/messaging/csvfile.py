"""Reading a bulk-send CSV file, in a small process pool of its own.

Reading, filling in and signing a file of up to 5,000 rows takes tens to hundreds of
milliseconds of CPU. On the IOLoop that froze every workspace; in an executor thread it still
held the interpreter lock, so the IOLoop waited up to a switch interval (5 ms) every time it
woke, and another workspace's request took tens of milliseconds longer. A process of its own
shares nothing with the web process but the CPU. This module imports only what reading needs,
so the pool's processes start quickly.
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import csv
import io
import logging
import multiprocessing
import threading

from . import text as smstext
from .phones import PhoneError, normalise
from core.web.problem import row_error
from core.i18n import N_

log = logging.getLogger(__name__)

CSV_MAX_BYTES = 2 * 1024 * 1024
CSV_MAX_ROWS = 5000
PREVIEW_ROWS = 200  # rows shown before confirming (all of them travel in the signed payload)
MAX_ERRORS = 500
WORKERS = 2  # files read at once per web process; more wait their turn, no other request does
DEADLINE = 60.0  # seconds; the caps keep a file far below this, it only bounds a stuck worker

_pool: concurrent.futures.ProcessPoolExecutor | None = None
_pool_lock = threading.Lock()


def _executor() -> concurrent.futures.ProcessPoolExecutor:
    global _pool
    with _pool_lock:
        if _pool is None:
            # spawn, not fork: the web process has threads (executor, DB pool) a fork would copy mid-work.
            _pool = concurrent.futures.ProcessPoolExecutor(WORKERS, mp_context=multiprocessing.get_context("spawn"))
        return _pool


def _forget(pool) -> None:
    global _pool
    with _pool_lock:
        if _pool is pool:
            _pool = None


@atexit.register
def _close() -> None:
    # Stop the workers and drop the pool while the interpreter is whole: collected during
    # teardown, the pool's clean-up callback fails ("Exception ignored ...") on modules already gone.
    global _pool
    with _pool_lock:
        pool, _pool = _pool, None
    if pool is not None:
        pool.shutdown(wait=True, cancel_futures=True)


async def read_upload(raw: bytes, region: str, secret: str) -> tuple[list[dict], int, list[dict], str | None]:
    """``(preview rows, number of good rows, errors, signed payload or None)`` for an uploaded file."""
    pool = _executor()
    try:
        future = asyncio.get_running_loop().run_in_executor(pool, prepare, raw, region, secret)
        return await asyncio.wait_for(future, DEADLINE)
    except concurrent.futures.process.BrokenProcessPool:
        log.warning("CSV reader process died; starting a new one for the next upload")
        _forget(pool)
    except asyncio.TimeoutError:
        log.warning("CSV reader took longer than %s s; its result is dropped", DEADLINE)
    return [], 0, [row_error(0, N_("The file could not be read just now; please upload it again."))], None


def prepare(raw: bytes, region: str, secret: str) -> tuple[list[dict], int, list[dict], str | None]:
    """Runs in a pool process: read the file and sign its good rows for the confirm step."""
    good, errors = parse_csv(raw, region)
    return good[:PREVIEW_ROWS], len(good), errors[:MAX_ERRORS], sign_rows(good, secret) if good else None


def sign_rows(rows: list[dict], secret: str) -> str:
    from itsdangerous import URLSafeTimedSerializer

    return URLSafeTimedSerializer(secret, salt="smsgw-csv").dumps([{"to": r["to"], "text": r["text"]} for r in rows])


def csv_text(raw: bytes, max_bytes: int) -> str | dict:
    """An uploaded file's text, or the error (``{"row": 0, "message": ...}``) that refuses it whole:
    too large, not UTF-8, or holding NUL characters. (Also used by other addons' CSV uploads.)"""
    if len(raw) > max_bytes:
        return row_error(0, N_("The file is larger than %(mb)s MB."), {"mb": max_bytes // 1024 // 1024})
    try:
        content = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        return row_error(0, N_("The file is not UTF-8 text. Save it as CSV UTF-8 and try again."))
    if "\x00" in content:  # PostgreSQL stores no NUL; a NUL means a binary or UTF-16 file
        return row_error(0, N_("The file holds NUL characters, so it is not CSV text. Save it as CSV UTF-8 and "
                               "try again."))
    return content


def parse_csv(raw: bytes, region: str) -> tuple[list[dict], list[dict]]:
    """Rows of (recipient, text, variables...) → ``(good, errors)``; ``{name}`` in text takes a column.

    CPU work bounded by the caps (bytes, rows, and each text by :func:`smstext.fill`). A placeholder
    is a column's value and nothing else (see ``fill``)."""
    content = csv_text(raw, CSV_MAX_BYTES)
    if isinstance(content, dict):
        return [], [content]
    reader = csv.DictReader(io.StringIO(content))
    try:
        fields = [f.strip().lower() for f in (reader.fieldnames or [])]
    except csv.Error as exc:
        return [], [row_error(1, N_("The first line cannot be read as CSV: %(why)s."), {"why": str(exc)})]
    if "recipient" not in fields or "text" not in fields:
        return [], [row_error(1, N_("The first line must name the columns, with at least 'recipient' and 'text'."))]
    good, errors = [], []
    rows = enumerate(reader, start=2)
    while True:
        try:
            n, row = next(rows)
        except StopIteration:
            break
        except csv.Error as exc:  # e.g. a field over the reader's limit (131,072 characters)
            errors.append(row_error(reader.line_num, N_("this line cannot be read (a field is too long, or a quote is "
                                                        "not closed): %(why)s; the rest was not read."),
                                    {"why": str(exc)}))
            break
        if n - 1 > CSV_MAX_ROWS:
            errors.append(row_error(n, N_("Only %(max)s rows per file; the rest was not read."), {"max": CSV_MAX_ROWS}))
            break
        row = {(k or "").strip().lower(): (v or "").strip() for k, v in row.items() if k}
        try:
            phone = normalise(row.get("recipient", ""), region)
        except PhoneError as exc:
            errors.append(row_error(n, exc.msgid, exc.msg_args))
            continue
        try:
            text = smstext.fill(row.get("text", ""), {k: v for k, v in row.items() if k not in ("recipient", "text")})
        except smstext.TemplateError as exc:
            errors.append(row_error(n, exc.msgid, exc.msg_args))
            continue
        if not text.strip():
            errors.append(row_error(n, N_("the text is empty")))
            continue
        info = smstext.describe(text)
        if info["segments"] > smstext.MAX_SEGMENTS:
            errors.append(row_error(n, N_("the text is too long (%(segments)s segments)"), {"segments": info["segments"]}))
            continue
        good.append({"row": n, "to": phone, "text": text, **info})
    return good, errors
