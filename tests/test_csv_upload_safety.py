"""A CSV upload is data, never code, and never stalls anyone else.

The upload's text column was rendered with ``str.format_map``: ``{a:>20000000}`` built a 20 MB
string (and ``text.describe`` walked it) on the IOLoop, freezing every workspace for seconds,
and ``{a.__class__.__mro__}`` was evaluated. Now a placeholder is a column's value and nothing
else, the rendered length is bounded before it is built, and the file is read in a process pool
of its own (not even an executor thread: that still shared the interpreter lock with the IOLoop).
"""

from __future__ import annotations

import html
import re
import threading
import time

from tests.support.identity import sign_in
from tests.support.phones import api_client


def upload(c, csv_text: str | bytes, timeout: float = 60):
    raw = csv_text.encode() if isinstance(csv_text, str) else csv_text
    return c.post("/send/csv", files={"file": ("list.csv", raw, "text/csv")}, data={"_xsrf": c.cookies.get("_xsrf")},
                  timeout=timeout)


def row_errors(page: str) -> dict[int, str]:
    return {int(n): html.unescape(m) for n, m in
            re.findall(r"<tr><td>(\d+)</td><td>([^<]*)</td></tr>", page.split('class="csv-errors"', 1)[-1])}


def owner(live_server, t):
    return sign_in(live_server, t.slug, f"owner@{t.slug}.example")


def test_format_specs_attributes_and_indexes_are_refused_and_nothing_is_evaluated(live_server, make_tenant):
    t = make_tenant("csvfmt")
    c = owner(live_server, t)
    csv_text = ("recipient,text,a\n"
                "+14155550111,{a:>20000000},x\n"
                "+14155550112,{a.__class__.__mro__},x\n"
                "+14155550113,{a[0]},xyz\n"
                "+14155550114,{a!r},x\n"
                "+14155550115,{a.__class__.__init__.__globals__},x\n"
                "+14155550116,{a:{a}},x\n")
    started = time.monotonic()
    r = upload(c, csv_text)
    assert time.monotonic() - started < 2
    assert r.status_code == 422, r.text[:500]  # no row is sendable
    errors = row_errors(r.text)
    assert sorted(errors) == [2, 3, 4, 5, 6, 7], errors
    for n in range(2, 8):
        assert "only {column} placeholders" in errors[n], errors[n]
    assert "{a:>20000000}" in errors[2] and "{a.__class__.__mro__}" in errors[3]
    # Nothing was evaluated: no padded value, no class, no module globals, no repr quotes.
    page = html.unescape(r.text)
    assert "<class" not in page and "'str'" not in page and "'x'" not in page and "builtins" not in page
    assert " " * 100 not in r.text and len(r.text) < 50_000
    assert 'name="payload"' not in r.text
    api = api_client(live_server, t.slug)
    assert api.get("/api/v1/messages").json()["messages"] == []


def test_plain_placeholders_escaped_braces_and_unknown_columns(live_server, make_tenant):
    t = make_tenant("csvplain")
    c = owner(live_server, t)
    csv_text = ("recipient,text,First Name,code\n"
                "+14155550121,\"Hi {first name}, your code is {CODE} {{not a column}}\",Ann,42\n"
                "+14155550122,Hello {missing},Bob,1\n"
                "+14155550123,Hello { ,Cy,1\n"
                "+14155550124,Hello },Dee,1\n")
    r = upload(c, csv_text)
    assert r.status_code == 200, r.text[:500]
    assert "Hi Ann, your code is 42 {not a column}" in html.unescape(r.text)
    errors = row_errors(r.text)
    assert "{missing}" in errors[3] and "no column" in errors[3], errors
    assert "{{" in errors[4] and "{{" in errors[5], errors  # says how to write a brace


def test_a_text_too_long_once_filled_in_is_refused_quickly(live_server, make_tenant):
    t = make_tenant("csvlong")
    c = owner(live_server, t)
    # 300 copies of a 100,000-character value: 30 MB of text had it been built.
    big = "v" * 100_000
    csv_text = "recipient,text,v\n+14155550131," + "{v}" * 300 + "," + big + "\n+14155550132,fine,x\n"
    started = time.monotonic()
    r = upload(c, csv_text)
    took = time.monotonic() - started
    assert r.status_code == 200, r.text[:500]
    errors = row_errors(r.text)
    assert list(errors) == [2] and "too long" in errors[2] and "1530" in errors[2], errors
    assert took < 1.0, took
    assert "fine" in r.text


def test_uploads_are_capped_in_rows_bytes_and_field_size_with_clear_errors(live_server, make_tenant):
    t = make_tenant("csvcaps")
    c = owner(live_server, t)
    rows = "".join(f"+1415555{i % 10000:04d},hi\n" for i in range(5001))
    r = upload(c, "recipient,text\n" + rows)
    errors = row_errors(r.text)
    assert "Only 5000 rows per file" in errors[5002], list(errors.items())[-3:]
    r = upload(c, b"recipient,text\n" + b"+14155550141,x\n" * (2 * 1024 * 1024 // 15 + 10))
    assert r.status_code == 422 and "larger than 2 MB" in r.text
    # A field longer than the CSV reader accepts: a readable error, not a 500.
    r = upload(c, "recipient,text\n+14155550142," + "x" * 200_000 + "\n")
    assert r.status_code == 422, (r.status_code, r.text[:300])
    assert "too long" in " ".join(row_errors(r.text).values()), r.text[:2000]
    # A NUL (a binary file, or UTF-16 saved by mistake) is refused before anything is read.
    r = upload(c, "recipient,text\n+14155550143,a\x00b\n")
    assert r.status_code == 422 and "NUL" in r.text, r.text[:300]


def test_a_hostile_upload_does_not_delay_another_workspace(live_server, make_tenant):
    """Another workspace's API calls, timed back to back while a hostile, full-size file is read."""
    uploader, other = make_tenant("csvslow"), make_tenant("csvother")
    c = owner(live_server, uploader)
    api = api_client(live_server, other.slug)
    assert api.get("/api/v1/messages").status_code == 200  # warm: token cached, connection open
    hostile = ["+14155550151,{a:>20000000},x", "+14155550152,{a:>20000000}{a:>20000000},x",
               "+14155550153,{a.__class__.__mro__},x"]
    # As much legitimate work as one file may hold: 4,997 rows, each rendered to its full length.
    filler = [f"+1415555{1000 + i:04d},{'{a}' * 40} tail,{'y' * 36}" for i in range(4997)]
    body = "recipient,text,a\n" + "\n".join(hostile + filler) + "\n"
    assert len(body.encode()) < 2 * 1024 * 1024
    result = {}
    worker = threading.Thread(target=lambda: result.update(r=upload(c, body, timeout=120)))
    worker.start()
    latencies = []
    while worker.is_alive():
        started = time.perf_counter()
        r = api.get("/api/v1/messages")
        latencies.append(time.perf_counter() - started)
        assert r.status_code == 200
    worker.join()
    latencies.sort()
    typical, slowest = latencies[len(latencies) * 9 // 10], latencies[-1]
    print(f"other workspace during the upload: {len(latencies)} requests, 90% within {typical * 1000:.0f} ms, "
          f"slowest {slowest * 1000:.0f} ms")
    # The old code froze the IOLoop for seconds (13.9 s here). "Slowest under 1 s" leaves room for a
    # loaded test machine, where requests take 100-250 ms now and then with no upload at all; with
    # another test process on the other core the 90th percentile was 137 ms once.
    assert typical < 0.25 and slowest < 1.0, (typical, slowest)
    assert len(latencies) >= 5, latencies  # the other workspace was asked throughout the upload
    assert result["r"].status_code == 200, result["r"].text[:300]
    errors = row_errors(result["r"].text)
    assert [errors.get(n, "")[:14] for n in (2, 3, 4)] == ["{a:>20000000} "] * 2 + ["{a.__class__._"], errors
