"""Small addon packages written by a test into a temporary folder, loaded the way a reseller's are."""

from __future__ import annotations

import shutil
import subprocess
import sys
import textwrap
from contextlib import contextmanager
from pathlib import Path

from core.addons import Addon, read_manifest

HELLO = Path(__file__).resolve().parent.parent / "fixtures" / "hello_addon"


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


def pip_install_hello(tmp_path_factory) -> Path:
    """A real `pip install` of the example reseller addon (``tests/fixtures/hello_addon``) into a
    directory of its own; put it on ``PYTHONPATH`` of an ``smsgw`` process to install it there."""
    target = tmp_path_factory.mktemp("site")
    src = tmp_path_factory.mktemp("build") / "hello_addon"
    shutil.copytree(HELLO, src)
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
                    "--disable-pip-version-check", "--target", str(target), str(src)], check=True)
    assert list(target.glob("smsgw_hello-1.0.0.dist-info/entry_points.txt"))
    return target
