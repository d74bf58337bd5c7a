"""The companion's local state: server URL, device token and identity (``state.json``, mode 0600)."""

from __future__ import annotations

import json
import os
import tempfile
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path


def default_dir() -> Path:
    return Path(os.environ.get("SMSGW_COMPANION_DIR", Path.home() / ".smsgw-companion"))


@dataclass
class State:
    server_url: str = ""
    token: str = ""
    device_id: int | None = None
    device_uid: str = field(default_factory=lambda: uuid.uuid4().hex)
    settings: dict = field(default_factory=dict)
    settings_version: int = 0
    connect_to: str | None = None

    @classmethod
    def load(cls, directory: Path) -> "State":
        path = Path(directory) / "state.json"
        if not path.exists():
            return cls()
        data = json.loads(path.read_text())
        return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})

    def save(self, directory: Path) -> None:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        os.chmod(directory, 0o700)
        # A temp file of its own per save (mkstemp creates it 0600): saves never trample each other.
        fd, tmp = tempfile.mkstemp(prefix="state.", suffix=".tmp", dir=directory)
        with os.fdopen(fd, "w") as fh:
            json.dump(asdict(self), fh, indent=1)
        os.replace(tmp, directory / "state.json")

    @property
    def paired(self) -> bool:
        return bool(self.server_url and self.token)
