"""``smsgw backup --to s3://bucket/prefix``: an S3-compatible bucket as the backup target (core/s3.py).

The bucket is ``tests/support/s3_standin.py``, a local stand-in for S3 that checks each request's
Signature V4 with its own implementation and refuses what S3 would refuse. The signer itself is
also held to the example AWS publishes for Signature V4.
"""

from __future__ import annotations

import base64
import datetime as dt
import os

import pytest

from core.backup import verify
from core.s3 import signature_v4
from tests.support.s3_standin import S3StandIn
from tests.test_backup import smsgw
from tests.support.serve import ROOT

KEY = base64.urlsafe_b64encode(b"s" * 32).decode()


@pytest.fixture
def bucket():
    standin = S3StandIn()
    yield standin
    standin.close()


def env_for(test_env, standin, **more):
    return {**os.environ, **test_env, **standin.env(), "PYTHONPATH": str(ROOT), "SMSGW_BACKUP_KEY": KEY, **more}


def test_the_signer_gives_the_signature_of_the_aws_example():
    # "GET Object" example of the AWS Signature Version 4 documentation for S3 (header-based auth).
    headers = signature_v4(
        "GET", "examplebucket.s3.amazonaws.com", "/test.txt", {}, {"Range": "bytes=0-9"},
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", "AKIAIOSFODNN7EXAMPLE",
        "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "us-east-1", dt.datetime(2013, 5, 24, tzinfo=dt.timezone.utc))
    assert headers["Authorization"].endswith(
        "Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41")


def test_a_backup_goes_to_the_bucket_and_retention_prunes_the_bucket(platform, test_env, bucket, tmp_path):
    today = dt.datetime.now(dt.timezone.utc)
    older = [today - dt.timedelta(days=1, hours=2), today - dt.timedelta(days=1, hours=1),
             today - dt.timedelta(days=2)]
    for when in older:
        name = f"smsgw-{when:%Y%m%dT%H%M%SZ}"
        bucket.objects[f"nightly/{name}.backup"] = b"an older backup"
        bucket.objects[f"nightly/{name}.manifest.json"] = b"{}"
    bucket.objects["nightly/notes.txt"] = b"not a backup: never deleted"
    bucket.objects["elsewhere/smsgw-20200101T000000Z.backup"] = b"outside the prefix: never deleted"
    done = smsgw(env_for(test_env, bucket), "backup", "--to", "s3://backups/nightly",
                 "--keep-daily", "2", "--keep-weekly", "0", "--keep-monthly", "0")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Uploading" in done.stdout and "(retention)" in done.stdout
    assert not bucket.refused
    new = [k for k in bucket.objects if k.startswith("nightly/smsgw-") and k.endswith(".backup")
           and bucket.objects[k] != b"an older backup"]
    assert len(new) == 1
    # What retention keeps: the new one (today) and the newest of yesterday; the rest goes, manifests too.
    kept_old = f"nightly/smsgw-{older[1]:%Y%m%dT%H%M%SZ}"
    assert sorted(bucket.objects) == sorted([
        new[0], new[0].replace(".backup", ".manifest.json"), kept_old + ".backup", kept_old + ".manifest.json",
        "nightly/notes.txt", "elsewhere/smsgw-20200101T000000Z.backup"])
    # The object is a whole, sealed backup: it verifies with the key.
    local = tmp_path / new[0].split("/")[1]
    local.write_bytes(bucket.objects[new[0]])
    assert verify(local, base64.urlsafe_b64decode(KEY))["kind"] == "platform"


@pytest.mark.parametrize("target, more, says", [
    ("s3://backups/x", {"SMSGW_BACKUP_S3_SECRET_KEY": "not the secret"}, "SignatureDoesNotMatch"),
    ("s3://backups/x", {"SMSGW_BACKUP_S3_ACCESS_KEY": "SOMEONEELSE"}, "InvalidAccessKeyId"),
    ("s3://no-such-bucket/x", {}, "NoSuchBucket"),
    ("s3://Bad_Bucket/x", {}, "an S3 target is s3://bucket"),
    ("s3://backups/x", {"SMSGW_BACKUP_S3_ENDPOINT": "ftp://example.com"}, "SMSGW_BACKUP_S3_ENDPOINT must be"),
    ("s3://backups/x", {"SMSGW_BACKUP_S3_SECRET_KEY": ""}, "SMSGW_BACKUP_S3_SECRET_KEY"),
])
def test_refusals_are_reported_and_store_nothing(test_env, bucket, target, more, says):
    done = smsgw(env_for(test_env, bucket, **more), "backup", "--to", target)
    assert done.returncode == 2 and says in done.stderr, done.stdout + done.stderr
    assert not bucket.objects


def test_smsgw_backup_dir_may_name_a_bucket(test_env, bucket):
    done = smsgw(env_for(test_env, bucket, SMSGW_BACKUP_DIR="s3://backups/from-env"), "backup")
    assert done.returncode == 0, done.stdout + done.stderr
    assert sorted(k.rsplit(".", 2)[-2:][-1] for k in bucket.objects) == ["backup", "json"]
    assert all(k.startswith("from-env/smsgw-") for k in bucket.objects)
