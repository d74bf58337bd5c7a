"""An S3-compatible bucket as a backup target: put, list, delete, signed with AWS Signature V4.

Why not boto3: three calls (PUT Object, ListObjectsV2, DELETE Object) do not justify some 80 MB of
boto3/botocore and their release cadence; Signature V4 is a documented, stable algorithm of about
forty lines, spoken by AWS S3, MinIO, Ceph RGW, Backblaze B2, Wasabi, Hetzner and Scaleway alike.
``requests`` (already a dependency) carries the bytes; a file is streamed from disk (bounded
memory), its SHA-256 computed first in one pass and signed as the payload hash.

Settings: ``SMSGW_BACKUP_S3_ENDPOINT`` (``https://s3.eu-central-1.amazonaws.com``, or a MinIO's
address), ``SMSGW_BACKUP_S3_REGION`` (``us-east-1``), ``SMSGW_BACKUP_S3_ACCESS_KEY`` and
``SMSGW_BACKUP_S3_SECRET_KEY`` (from the environment only); the bucket and prefix come from the
target, ``s3://bucket/prefix``. Path-style addressing (``endpoint/bucket/key``), which every
S3-compatible server accepts.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import os
import re
import xml.etree.ElementTree as ET
from pathlib import Path
from urllib.parse import quote, urlsplit

EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()


class S3Error(RuntimeError):
    """The bucket refused or could not be reached; the message says which and why."""


def _sign(key: bytes, msg: str) -> bytes:
    return hmac.new(key, msg.encode(), hashlib.sha256).digest()


def signature_v4(method: str, host: str, path: str, query: dict, headers: dict, payload_sha256: str,
                 access_key: str, secret_key: str, region: str, now: dt.datetime) -> dict:
    """The headers that sign a request (``Authorization``, ``x-amz-date``, ``x-amz-content-sha256``)."""
    stamp, day = now.strftime("%Y%m%dT%H%M%SZ"), now.strftime("%Y%m%d")
    headers = {k.lower(): str(v).strip() for k, v in headers.items()}
    headers.update({"host": host, "x-amz-date": stamp, "x-amz-content-sha256": payload_sha256})
    signed = ";".join(sorted(headers))
    canonical_query = "&".join(f"{quote(k, safe='-_.~')}={quote(str(v), safe='-_.~')}"
                               for k, v in sorted(query.items()))
    canonical = "\n".join([method, quote(path, safe="/-_.~"), canonical_query,
                           "".join(f"{k}:{headers[k]}\n" for k in sorted(headers)), signed, payload_sha256])
    scope = f"{day}/{region}/s3/aws4_request"
    to_sign = "\n".join(["AWS4-HMAC-SHA256", stamp, scope, hashlib.sha256(canonical.encode()).hexdigest()])
    key = _sign(_sign(_sign(_sign(("AWS4" + secret_key).encode(), day), region), "s3"), "aws4_request")
    signature = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    return {"Authorization": f"AWS4-HMAC-SHA256 Credential={access_key}/{scope}, SignedHeaders={signed}, "
                             f"Signature={signature}",
            "x-amz-date": stamp, "x-amz-content-sha256": payload_sha256}


class Bucket:
    def __init__(self, target: str, endpoint: str, access_key: str, secret_key: str, region: str = "us-east-1"):
        m = re.fullmatch(r"s3://([a-z0-9][a-z0-9.-]{1,61}[a-z0-9])(?:/(.*))?", target or "")
        if not m:
            raise S3Error(f"an S3 target is s3://bucket[/prefix], got {target[:80]!r}")
        if not re.match(r"^https?://[^/]+/?$", endpoint or ""):
            raise S3Error("SMSGW_BACKUP_S3_ENDPOINT must be the server's address, e.g. https://s3.eu-central-1.amazonaws.com")
        if not access_key or not secret_key:
            raise S3Error("set SMSGW_BACKUP_S3_ACCESS_KEY and SMSGW_BACKUP_S3_SECRET_KEY for an S3 target")
        self.bucket, self.prefix = m.group(1), (m.group(2) or "").strip("/")
        self.endpoint = endpoint.rstrip("/")
        self.host = urlsplit(self.endpoint).netloc
        self.access_key, self.secret_key, self.region = access_key, secret_key, region or "us-east-1"

    @classmethod
    def from_env(cls, target: str, env=None) -> "Bucket":
        env = os.environ if env is None else env
        return cls(target, env.get("SMSGW_BACKUP_S3_ENDPOINT", ""), env.get("SMSGW_BACKUP_S3_ACCESS_KEY", ""),
                   env.get("SMSGW_BACKUP_S3_SECRET_KEY", ""), env.get("SMSGW_BACKUP_S3_REGION", "us-east-1"))

    def _key(self, name: str) -> str:
        return f"{self.prefix}/{name}" if self.prefix else name

    def _request(self, method: str, key: str = "", query=None, body=None, sha256: str = EMPTY_SHA256,
                 headers=None):
        import requests

        path = f"/{self.bucket}/{key}" if key else f"/{self.bucket}"
        query = query or {}
        headers = dict(headers or {})
        headers.update(signature_v4(method, self.host, path, query, headers, sha256, self.access_key,
                                    self.secret_key, self.region, dt.datetime.now(dt.timezone.utc)))
        try:
            r = requests.request(method, self.endpoint + quote(path, safe="/-_.~"), params=query, data=body,
                                 headers=headers, timeout=300)
        except requests.RequestException as exc:
            raise S3Error(f"the S3 server at {self.endpoint} could not be reached ({exc.__class__.__name__})") from None
        if r.status_code >= 300:
            code = re.search(r"<Code>([^<]{1,80})</Code>", r.text or "")
            raise S3Error(f"S3 refused {method} {path}: {r.status_code} {code.group(1) if code else ''}".strip())
        return r

    def put(self, name: str, path: Path) -> None:
        """Upload the file ``path`` as ``name``, streamed from disk."""
        digest = hashlib.sha256()
        with open(path, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                digest.update(chunk)
        size = Path(path).stat().st_size
        with open(path, "rb") as fh:
            self._request("PUT", self._key(name), body=fh, sha256=digest.hexdigest(),
                          headers={"Content-Length": str(size)})

    def names(self) -> list[str]:
        """The names (without the prefix) of the objects under the prefix."""
        out, token = [], None
        while True:
            query = {"list-type": "2", "prefix": self._key("")}
            if token:
                query["continuation-token"] = token
            root = ET.fromstring(self._request("GET", query=query).content)
            ns = root.tag[:root.tag.index("}") + 1] if root.tag.startswith("{") else ""
            for item in root.iter(f"{ns}Contents"):
                key = item.findtext(f"{ns}Key") or ""
                out.append(key[len(self._key("")):])
            token = root.findtext(f"{ns}NextContinuationToken")
            if (root.findtext(f"{ns}IsTruncated") or "false") != "true" or not token:
                return out

    def delete(self, name: str) -> None:
        self._request("DELETE", self._key(name))
