"""A stand-in for an S3-compatible object store on 127.0.0.1 (what a MinIO or AWS S3 would be).

It holds objects in memory and answers PUT Object, GET (ListObjectsV2, path style) and DELETE
Object. Every request's shape is checked as S3 checks it: an ``AWS4-HMAC-SHA256`` Authorization
with the known access key, a signature it recomputes itself (its own canonical request, from the
request as it came: method, path, query, the signed headers' values), an ``x-amz-content-sha256``
equal to the body's real hash, an ``x-amz-date`` within 15 minutes. Anything else is refused with
S3's XML error (403 ``SignatureDoesNotMatch`` / ``AccessDenied``, 400 for a malformed request)
and recorded in ``refused``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, quote, unquote, urlsplit
from xml.sax.saxutils import escape

ACCESS_KEY, SECRET_KEY, REGION = "STANDINACCESSKEY", "stand-in-secret-key-0123456789", "us-east-1"


def _hmac(key: bytes, msg: str) -> bytes:
    return hmac.new(key, msg.encode(), hashlib.sha256).digest()


class S3StandIn:
    def __init__(self, bucket: str = "backups"):
        self.bucket = bucket
        self.objects: dict[str, bytes] = {}
        self.refused: list[tuple[str, str]] = []
        self.requests: list[tuple[str, str]] = []
        standin = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _answer(self, status: int, body: bytes = b"", content_type: str = "application/xml"):
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _refuse(self, status: int, code: str):
                standin.refused.append((self.command, code))
                self._answer(status, f"<?xml version='1.0'?><Error><Code>{code}</Code></Error>".encode())

            def _handle(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                problem = standin.check(self.command, self.path, dict(self.headers.items()), body)
                if problem:
                    return self._refuse(*problem)
                parts = urlsplit(self.path)
                segments = unquote(parts.path).lstrip("/").split("/", 1)
                if segments[0] != standin.bucket:
                    return self._refuse(404, "NoSuchBucket")
                key = segments[1] if len(segments) > 1 else ""
                standin.requests.append((self.command, key))
                if self.command == "PUT" and key:
                    standin.objects[key] = body
                    return self._answer(200)
                if self.command == "DELETE" and key:
                    standin.objects.pop(key, None)
                    return self._answer(204)
                query = dict(parse_qsl(parts.query, keep_blank_values=True))
                if self.command == "GET" and not key and query.get("list-type") == "2":
                    prefix = query.get("prefix", "")
                    keys = sorted(k for k in standin.objects if k.startswith(prefix))
                    items = "".join(f"<Contents><Key>{escape(k)}</Key><Size>{len(standin.objects[k])}</Size></Contents>"
                                    for k in keys)
                    xml = ("<?xml version='1.0' encoding='UTF-8'?><ListBucketResult "
                           "xmlns='http://s3.amazonaws.com/doc/2006-03-01/'>"
                           f"<Name>{standin.bucket}</Name><KeyCount>{len(keys)}</KeyCount>"
                           f"<IsTruncated>false</IsTruncated>{items}</ListBucketResult>")
                    return self._answer(200, xml.encode())
                return self._refuse(400, "InvalidRequest")

            do_GET = do_PUT = do_DELETE = _handle

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_port
        self.endpoint = f"http://127.0.0.1:{self.port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def check(self, method: str, raw_path: str, headers: dict, body: bytes):
        """``None`` for a request S3 would take, else ``(status, S3 error code)``."""
        h = {k.lower(): v.strip() for k, v in headers.items()}
        auth = h.get("authorization", "")
        if not auth.startswith("AWS4-HMAC-SHA256 "):
            return 403, "AccessDenied"
        try:
            fields = dict(part.strip().split("=", 1) for part in auth[len("AWS4-HMAC-SHA256 "):].split(","))
            access, day, region, service, terminal = fields["Credential"].split("/")
            signed = fields["SignedHeaders"].split(";")
            stamp = dt.datetime.strptime(h["x-amz-date"], "%Y%m%dT%H%M%SZ").replace(tzinfo=dt.timezone.utc)
        except (KeyError, ValueError):
            return 400, "AuthorizationHeaderMalformed"
        if access != ACCESS_KEY:
            return 403, "InvalidAccessKeyId"
        if (region, service, terminal) != (REGION, "s3", "aws4_request") or day != stamp.strftime("%Y%m%d"):
            return 400, "AuthorizationHeaderMalformed"
        if abs((dt.datetime.now(dt.timezone.utc) - stamp).total_seconds()) > 900:
            return 403, "RequestTimeTooSkewed"
        if not {"host", "x-amz-date", "x-amz-content-sha256"} <= set(signed) or any(n not in h for n in signed):
            return 400, "AuthorizationHeaderMalformed"
        if h["x-amz-content-sha256"] != hashlib.sha256(body).hexdigest():
            return 400, "XAmzContentSHA256Mismatch"
        parts = urlsplit(raw_path)
        query = sorted(parse_qsl(parts.query, keep_blank_values=True))
        canonical = "\n".join([
            method, quote(unquote(parts.path), safe="/-_.~"),
            "&".join(f"{quote(k, safe='-_.~')}={quote(v, safe='-_.~')}" for k, v in query),
            "".join(f"{n}:{' '.join(h[n].split())}\n" for n in sorted(signed)), ";".join(sorted(signed)),
            h["x-amz-content-sha256"]])
        scope = f"{day}/{REGION}/s3/aws4_request"
        to_sign = f"AWS4-HMAC-SHA256\n{h['x-amz-date']}\n{scope}\n{hashlib.sha256(canonical.encode()).hexdigest()}"
        key = _hmac(_hmac(_hmac(_hmac(("AWS4" + SECRET_KEY).encode(), day), REGION), "s3"), "aws4_request")
        if not hmac.compare_digest(hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest(), fields.get("Signature", "")):
            return 403, "SignatureDoesNotMatch"
        return None

    def env(self) -> dict:
        return {"SMSGW_BACKUP_S3_ENDPOINT": self.endpoint, "SMSGW_BACKUP_S3_ACCESS_KEY": ACCESS_KEY,
                "SMSGW_BACKUP_S3_SECRET_KEY": SECRET_KEY, "SMSGW_BACKUP_S3_REGION": REGION}

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
