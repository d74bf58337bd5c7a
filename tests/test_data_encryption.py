"""Secrets at rest: DataCipher values, the encrypted signing keys, and data-key rotation through the CLI."""

from __future__ import annotations

import jwt
import pytest
from cryptography.fernet import Fernet
from cryptography.hazmat.primitives import serialization

from core.crypto import PREFIX, DataCipher, DecryptionError
from core.jwtkeys import KeyRing
from tests.support.identity import admin_sql, api_sign_in, bearer, client, owner_email, smsgw

PLAINTEXTS = ["webhook secret: 9f8e7d6c5b4a39281706", "x" * 64, "ünïcödé secret with € and 🙂 inside",
              "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n-----END PRIVATE KEY-----\n"]


@pytest.mark.parametrize("plaintext", PLAINTEXTS)
def test_stored_values_never_equal_or_contain_the_plaintext(plaintext):
    cipher = DataCipher([Fernet.generate_key().decode()])
    stored = cipher.encrypt(plaintext)
    assert stored.startswith(PREFIX)
    assert stored != plaintext and plaintext not in stored
    for line in plaintext.splitlines():
        if len(line) >= 8:
            assert line not in stored
    assert cipher.encrypt(plaintext) != stored  # a fresh IV every time: equal secrets do not look equal
    assert cipher.decrypt(stored) == plaintext


def test_decryption_fails_loudly_for_wrong_keys_plaintext_and_tampering():
    cipher = DataCipher([Fernet.generate_key().decode()])
    other = DataCipher([Fernet.generate_key().decode()])
    stored = cipher.encrypt("a secret value")
    with pytest.raises(DecryptionError):
        other.decrypt(stored)
    with pytest.raises(DecryptionError):
        cipher.decrypt("a secret value")  # never mistaken for ciphertext
    tampered = stored[:-6] + ("A" if stored[-6] != "A" else "B") + stored[-5:]
    with pytest.raises(DecryptionError):
        cipher.decrypt(tampered)


def signing_rows(platform) -> dict:
    return dict(admin_sql(platform, "SELECT kid, private_key_enc FROM public.signing_key", fetch=True))


def test_signing_keys_are_stored_encrypted(platform):
    platform.keyring.jwks()  # at least one key exists
    rows = admin_sql(platform, "SELECT kid, private_key_enc, public_pem FROM public.signing_key", fetch=True)
    assert rows
    cipher = platform.data_cipher()
    for kid, enc, public_pem in rows:
        assert enc.startswith(PREFIX)
        # (Not "MII", the start of every DER key in base64: three characters turn up by chance in
        # about one ciphertext in a hundred; the 40-character checks below are what says it.)
        assert "PRIVATE KEY" not in enc
        pem = cipher.decrypt(enc)
        private = serialization.load_pem_private_key(pem.encode(), password=None)
        body = "".join(pem.strip().splitlines()[1:-1])
        assert body[:40] not in enc and body[-40:] not in enc
        derived = private.public_key().public_bytes(serialization.Encoding.PEM,
                                                    serialization.PublicFormat.SubjectPublicKeyInfo).decode()
        assert derived == public_pem, kid


def data_keys(platform) -> list[str]:
    path = platform.secrets.path("data-keys")
    return [line.strip() for line in path.read_text().splitlines() if line.strip()]


def test_rotate_data_key_re_encrypts_and_signing_keeps_working(platform, live_server, make_tenant, cli_env):
    tenant = make_tenant("dk")
    platform.keyring.jwks()
    old_keys = data_keys(platform)
    before = signing_rows(platform)
    plain_before = {kid: platform.data_cipher().decrypt(enc) for kid, enc in before.items()}
    try:
        r = smsgw(cli_env, "keys", "rotate-data-key")
        assert r.returncode == 0, r.stderr
        assert "Re-encrypted" in r.stdout and "--drop-old" in r.stdout
    finally:
        platform.reset_data_cipher()  # this process must read the new key list, like a restarted one
    keys = data_keys(platform)
    assert len(keys) == len(old_keys) + 1 and keys[1:] == old_keys
    new_only = DataCipher(keys[:1])
    after = signing_rows(platform)
    assert set(after) == set(before)
    for kid, enc in after.items():
        assert enc != before[kid], f"{kid} was not re-encrypted"
        assert new_only.decrypt(enc) == plain_before[kid]  # under the new key
        assert DataCipher(keys).decrypt(enc) == plain_before[kid]  # what every process holds now
    # Signing still works: a fresh key ring (as a restarted process) signs; the live server verifies.
    ring = KeyRing(platform)
    token, _claims = ring.issue_access(subject="user:1", tenant=tenant.slug, role="customer")
    r = client(live_server, tenant.slug).get("/api/v1/me", headers=bearer(token))
    assert r.status_code == 200, r.text
    assert api_sign_in(live_server, tenant.slug, owner_email(tenant))["access_token"]
    # A new signing key can be made under the new data key, by another process.
    r = smsgw(cli_env, "keys", "rotate")
    assert r.returncode == 0, r.stderr
    new_kid = r.stdout.split("New signing key ")[1].split(".")[0]
    assert new_only.decrypt(signing_rows(platform)[new_kid]).startswith("-----BEGIN PRIVATE KEY-----")


def test_rotate_data_key_with_drop_old_leaves_only_the_new_key(platform, live_server, make_tenant, cli_env):
    tenant = make_tenant("dkd")
    platform.keyring.jwks()
    old_keys = data_keys(platform)
    before = signing_rows(platform)
    try:
        r = smsgw(cli_env, "keys", "rotate-data-key", "--drop-old")
        assert r.returncode == 0, r.stderr
        assert "--drop-old" not in r.stdout
    finally:
        platform.reset_data_cipher()
    keys = data_keys(platform)
    assert len(keys) == 1 and keys[0] not in old_keys
    new_cipher, old_cipher = DataCipher(keys), DataCipher(old_keys)
    for kid, enc in signing_rows(platform).items():
        assert enc != before[kid]
        assert new_cipher.decrypt(enc).startswith("-----BEGIN PRIVATE KEY-----")
        with pytest.raises(DecryptionError):
            old_cipher.decrypt(enc)  # the old keys alone no longer open anything
    # The platform keeps signing and verifying with the new key list.
    ring = KeyRing(platform)
    token, claims = ring.issue_access(subject="user:1", tenant=tenant.slug, role="customer")
    assert jwt.get_unverified_header(token)["kid"] in signing_rows(platform)
    assert client(live_server, tenant.slug).get("/api/v1/me", headers=bearer(token)).status_code == 200
    assert api_sign_in(live_server, tenant.slug, owner_email(tenant))["access_token"]
