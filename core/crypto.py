"""Encryption of sensitive values at rest (webhook secrets, signing keys) with MultiFernet.

Keys come from ``SMSGW_DATA_KEYS`` (comma-separated Fernet keys, newest first)
or from ``<data_dir>/secrets/data-keys`` (one per line, newest first, 0600).
The newest key encrypts; every listed key decrypts, so rotation is: add a key
in front, re-encrypt everything (``smsgw keys rotate-data-key``), then drop the
old key. Ciphertexts carry a ``enc:v1:`` marker, so a stored value can never be
mistaken for plaintext.
"""

from __future__ import annotations

import os

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

PREFIX = "enc:v1:"


class DecryptionError(ValueError):
    """A stored value cannot be decrypted with any known key."""


class DataCipher:
    def __init__(self, keys: list[str]):
        if not keys:
            raise ValueError("at least one data key is needed")
        self.keys = keys
        self._fernet = MultiFernet([Fernet(k.encode() if isinstance(k, str) else k) for k in keys])

    def encrypt(self, plaintext: str) -> str:
        return PREFIX + self._fernet.encrypt(plaintext.encode("utf-8")).decode("ascii")

    def decrypt(self, stored: str) -> str:
        if not stored.startswith(PREFIX):
            raise DecryptionError("value is not an encrypted value")
        try:
            return self._fernet.decrypt(stored[len(PREFIX):].encode("ascii")).decode("utf-8")
        except InvalidToken:
            raise DecryptionError("no known data key decrypts this value") from None

    def rotate(self, stored: str) -> str:
        """Re-encrypt under the newest key."""
        return PREFIX + self._fernet.rotate(stored[len(PREFIX):].encode("ascii")).decode("ascii")


class DataKeyStore:
    def __init__(self, secrets_store, env=None):
        self.secrets = secrets_store
        self.env = os.environ if env is None else env

    def keys(self) -> list[str]:
        if self.env.get("SMSGW_DATA_KEYS"):
            return [k.strip() for k in self.env["SMSGW_DATA_KEYS"].split(",") if k.strip()]
        raw = self.secrets.get("data-keys", generate=lambda: Fernet.generate_key().decode())
        return [line.strip() for line in raw.splitlines() if line.strip()]

    def cipher(self) -> DataCipher:
        return DataCipher(self.keys())

    def add_new_key(self) -> list[str]:
        """Put a fresh key in front of the file's keys (env-configured keys are the operator's job)."""
        if self.env.get("SMSGW_DATA_KEYS"):
            raise RuntimeError("SMSGW_DATA_KEYS is set: add the new key there (newest first) and re-run")
        keys = [Fernet.generate_key().decode()] + self.keys()
        path = self.secrets.path("data-keys")
        tmp = path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write("\n".join(keys) + "\n")
        os.replace(tmp, path)
        return keys

    def drop_old_keys(self) -> None:
        keys = self.keys()[:1]
        path = self.secrets.path("data-keys")
        tmp = path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write("\n".join(keys) + "\n")
        os.replace(tmp, path)


# -- rotation ---------------------------------------------------------------------

# Encrypted columns in the catalogue: (table, key column, value column).
CORE_ENCRYPTED_PUBLIC = [("public.signing_key", "kid", "private_key_enc")]


def rotate_data_key(platform, drop_old: bool = False, progress=None) -> dict:
    """Add a new data key and re-encrypt every registered encrypted value under it.

    Addons declare their encrypted columns with ``smsgw_encrypted_fields``.
    Old keys stay able to decrypt (other processes may still hold them) unless
    ``drop_old`` is given once every process has restarted.
    """
    from .db import app_db, connection, tenant_transaction

    store = DataKeyStore(platform.secrets)
    store.add_new_key()
    platform.reset_data_cipher()
    cipher = platform.data_cipher()
    public_fields = list(CORE_ENCRYPTED_PUBLIC)
    tenant_fields = []
    for _addon, fields in platform.registry.call_each("smsgw_encrypted_fields"):
        for f in fields:
            (public_fields if f.scope == "public" else tenant_fields).append((f.table, f.key_column, f.value_column))
    counts = {"public": 0, "tenant": 0}

    def rewrite(table, key_col, col):
        n = 0
        for key, value in app_db.execute_sql(f"SELECT {key_col}, {col} FROM {table} WHERE {col} IS NOT NULL").fetchall():
            app_db.execute_sql(f"UPDATE {table} SET {col} = %s WHERE {key_col} = %s", (cipher.rotate(value), key))
            n += 1
        return n

    with connection():
        with app_db.atomic():
            for table, key_col, col in public_fields:
                counts["public"] += rewrite(table, key_col, col)
    if tenant_fields:
        tenants = platform.tenants.list()
        for i, tenant in enumerate(tenants, 1):
            with tenant_transaction(tenant.ref):
                for table, key_col, col in tenant_fields:
                    counts["tenant"] += rewrite(table, key_col, col)
            if progress:
                progress("re-encrypt", i, len(tenants), tenant.slug)
    if drop_old:
        store.drop_old_keys()
        platform.reset_data_cipher()
    return counts
