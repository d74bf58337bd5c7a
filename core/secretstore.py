"""Secrets from the environment, or generated once into the data dir (mode 0600).

A secret never appears in logs or error messages: callers get the value, the
log gets at most the file name.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path


class SecretStore:
    """Reads ``<data_dir>/secrets/<name>``; creates it (0600, dir 0700) when missing.

    An environment variable, when set, always wins and nothing is written.
    """

    def __init__(self, data_dir: Path, env=None):
        self.dir = Path(data_dir) / "secrets"
        self.env = os.environ if env is None else env

    def get(self, name: str, env_var: str | None = None, generate=None) -> str:
        if env_var and self.env.get(env_var):
            return self.env[env_var]
        path = self.dir / name
        try:
            return path.read_text().strip()
        except FileNotFoundError:
            pass
        value = (generate or (lambda: secrets.token_urlsafe(48)))()
        self.dir.mkdir(parents=True, exist_ok=True)
        os.chmod(self.dir, 0o700)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            # Another process won the race; theirs is the secret.
            return path.read_text().strip()
        with os.fdopen(fd, "w") as fh:
            fh.write(value + "\n")
        return value

    def path(self, name: str) -> Path:
        return self.dir / name
