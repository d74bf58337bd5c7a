"""RS256 access tokens: signing keys with ``kid``, rotation, JWKS, and a strict verifier.

Signing keys live in ``public.signing_key`` (the private half encrypted with
the data key), so every web process signs and verifies with the same set.
``smsgw keys rotate`` makes a new key the signer and *retires* the old one; a
retired key stays published in the JWKS until every token it signed has expired.
"""

from __future__ import annotations

import base64
import datetime as dt
import secrets
import threading
import time
import uuid

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from .clock import utcnow
from .db import app_db, connection
from .i18n import N_
from .web.problem import Refusal

ACCESS_TTL = 900  # seconds: exactly 15 minutes
AUDIENCE = "smsgw-api"
ALGORITHM = "RS256"
LEEWAY = 30  # seconds of clock skew tolerated on exp/iat


class TokenError(Refusal):
    """The token is not acceptable; the message is safe to show."""


def _b64u(n: int) -> str:
    raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


class KeyRing:
    def __init__(self, platform):
        self.platform = platform
        self._lock = threading.Lock()
        self._loaded_at = 0.0
        self._signer = None  # (kid, private_key)
        self._public: dict[str, object] = {}
        self._public_meta: dict[str, tuple] = {}

    @property
    def issuer(self) -> str:
        return self.platform.settings.public_url()

    # -- storage ------------------------------------------------------------
    def _load(self) -> None:
        cipher = self.platform.data_cipher()
        horizon = utcnow() - dt.timedelta(seconds=ACCESS_TTL + LEEWAY + 60)
        with connection():
            rows = app_db.execute_sql(
                "SELECT kid, private_key_enc, public_pem, retired_at FROM public.signing_key "
                "WHERE retired_at IS NULL OR retired_at > %s ORDER BY created_at DESC", (horizon,)).fetchall()
        public, meta, signer = {}, {}, None
        for kid, enc, pem, retired in rows:
            key = serialization.load_pem_public_key(pem.encode())
            public[kid] = key
            meta[kid] = (retired,)
            if retired is None and signer is None:
                signer = (kid, serialization.load_pem_private_key(cipher.decrypt(enc).encode(), password=None))
        self._public, self._public_meta, self._signer = public, meta, signer
        self._loaded_at = time.monotonic()

    def _fresh(self, max_age: float = 60.0) -> None:
        if time.monotonic() - self._loaded_at > max_age or self._signer is None:
            with self._lock:
                self._load()
                if self._signer is None:
                    self.rotate()

    def rotate(self) -> str:
        """Create a new signing key and retire the current one. Returns the new ``kid``."""
        private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        pem_priv = private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                         serialization.NoEncryption()).decode()
        pem_pub = private.public_key().public_bytes(serialization.Encoding.PEM,
                                                    serialization.PublicFormat.SubjectPublicKeyInfo).decode()
        kid = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%d") + "-" + secrets.token_hex(4)
        enc = self.platform.data_cipher().encrypt(pem_priv)
        with connection():
            with app_db.atomic():
                app_db.execute_sql("UPDATE public.signing_key SET retired_at = now() WHERE retired_at IS NULL")
                app_db.execute_sql("INSERT INTO public.signing_key (kid, private_key_enc, public_pem) "
                                   "VALUES (%s, %s, %s)", (kid, enc, pem_pub))
        self._load()
        return kid

    # -- tokens -------------------------------------------------------------
    def issue_access(self, *, subject: str, tenant: str | None, role: str, extra: dict | None = None,
                     now: int | None = None) -> tuple[str, dict]:
        self._fresh()
        kid, key = self._signer
        now = int(time.time()) if now is None else now
        claims = {"iss": self.issuer, "aud": AUDIENCE, "sub": subject, "tenant": tenant, "role": role,
                  "typ": "access", "iat": now, "nbf": now, "exp": now + ACCESS_TTL, "jti": uuid.uuid4().hex}
        if extra:
            claims.update(extra)
        token = jwt.encode(claims, key, algorithm=ALGORITHM, headers={"kid": kid, "typ": "JWT"})
        return token, claims

    def verify_access(self, token: str) -> dict:
        """Verify an access token: RS256 only, known ``kid``, ``iss``/``aud``/``typ``/``exp`` checked."""
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise TokenError(N_("The access token is malformed.")) from None
        if header.get("alg") != ALGORITHM:
            raise TokenError(N_("The access token must be signed with RS256."))
        kid = header.get("kid")
        if not isinstance(kid, str):
            raise TokenError(N_("The access token names no signing key."))
        self._fresh()
        key = self._public.get(kid)
        if key is None:
            # Maybe another process rotated just now: reload once, then give up.
            with self._lock:
                if time.monotonic() - self._loaded_at > 1.0:
                    self._load()
            key = self._public.get(kid)
        if key is None:
            raise TokenError(N_("The access token was signed by an unknown key."))
        try:
            claims = jwt.decode(token, key, algorithms=[ALGORITHM], audience=AUDIENCE, issuer=self.issuer,
                                leeway=LEEWAY,
                                options={"require": ["exp", "iat", "iss", "aud", "sub", "typ"]})
        except jwt.ExpiredSignatureError:
            raise TokenError(N_("The access token has expired; refresh it.")) from None
        except jwt.PyJWTError as exc:
            raise TokenError(N_("The access token is not valid (%(why)s)."), {"why": exc.__class__.__name__}) from None
        if claims.get("typ") != "access":
            raise TokenError(N_("This is not an access token."))
        return claims

    def jwks(self) -> dict:
        self._fresh()
        keys = []
        for kid, key in self._public.items():
            numbers = key.public_numbers()
            keys.append({"kty": "RSA", "use": "sig", "alg": ALGORITHM, "kid": kid,
                         "n": _b64u(numbers.n), "e": _b64u(numbers.e)})
        return {"keys": keys}
