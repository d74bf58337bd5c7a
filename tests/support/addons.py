"""Small addon packages written by a test into a temporary folder, loaded the way a reseller's are."""

from __future__ import annotations

import sys
import textwrap
from contextlib import contextmanager
from pathlib import Path

from core.addons import Addon, read_manifest


@contextmanager
def addon_folder(root: Path):
    """Put ``root`` on ``sys.path`` for the block; forget the packages made there afterwards."""
    sys.path.insert(0, str(root))
    try:
        yield root
    finally:
        sys.path.remove(str(root))
        for name in [m for m in sys.modules if m.startswith("specs_test_")]:
            del sys.modules[name]


def make_addon(root: Path, name: str, hooks: str, depends: tuple[str, ...] = ()) -> Addon:
    """A package ``specs_test_<name>`` under ``root`` with a manifest and ``hooks`` as its hooks.py."""
    pkg = root / f"specs_test_{name}"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "__manifest__.py").write_text(repr({"name": name, "version": "1", "summary": "a test addon",
                                               "depends": list(depends), "license": "MIT", "author": "tests"}))
    (pkg / "hooks.py").write_text(textwrap.dedent(hooks))
    return read_manifest(pkg.name)
