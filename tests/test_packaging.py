"""What each distribution puts on a machine.

The phone's companion is a distribution of its own (``android_companion/pyproject.toml``) that needs
only the standard library: Termux has no wheels for most of the server's dependencies. The server
needs ``pgserver`` (PostgreSQL binaries) only for its embedded database, so it is the ``embedded``
extra: a host with ``DATABASE_URL`` runs without it.
"""

from __future__ import annotations

import ast
import importlib.metadata
import importlib.util
import json
import os
import pkgutil
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import android_companion

ROOT = Path(__file__).resolve().parent.parent
COMPANION = ROOT / "android_companion"
# Runs `smsgw ARGS` as if pgserver were not installed: the first finder asked raises for it what the
# import system raises for a package that is not there.
SMSGW_WITHOUT_PGSERVER = """
import sys

class NotInstalled:
    @staticmethod
    def find_spec(name, path=None, target=None):
        if name.partition(".")[0] == "pgserver":
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)

sys.meta_path.insert(0, NotInstalled)
from core.cli import main
sys.exit(main(sys.argv[1:]))
"""


def companion_modules() -> list[str]:
    return sorted(m.name for m in pkgutil.walk_packages(android_companion.__path__, "android_companion."))


def test_companion_imports_only_the_standard_library():
    """Every module of the companion imported in a fresh interpreter brings in nothing but the
    standard library (what the interpreter loaded before, e.g. for site-packages, is not counted)."""
    modules = ["android_companion"] + companion_modules()
    assert "android_companion.backends.termux" in modules and "android_companion.cli" in modules
    code = ("import importlib, json, sys\n"
            "before = set(sys.modules)\n"
            f"sys.path.insert(0, {str(ROOT)!r})\n"
            f"for name in {modules!r}:\n"
            "    importlib.import_module(name)\n"
            "print(json.dumps(sorted({m.split('.')[0] for m in set(sys.modules) - before})))")
    proc = subprocess.run([sys.executable, "-I", "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    loaded = json.loads(proc.stdout)
    assert "android_companion" in loaded and "sqlite3" in loaded
    assert [m for m in loaded if m not in sys.stdlib_module_names and m != "android_companion"] == []


def test_companion_sources_import_only_the_standard_library():
    """The same for every import statement, also those inside functions that an import does not run."""
    outside = []
    for name in ["android_companion"] + companion_modules():
        path = Path(importlib.util.find_spec(name).origin)
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                tops = [alias.name.split(".")[0] for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                tops = [node.module.split(".")[0]]
            else:
                continue
            outside += [f"{path.relative_to(ROOT)}:{node.lineno} {top}" for top in tops
                        if top not in sys.stdlib_module_names and top != "android_companion"]
    assert outside == []


def run(*args, **kw) -> subprocess.CompletedProcess:
    proc = subprocess.run([str(a) for a in args], capture_output=True, text=True, timeout=120, **kw)
    assert proc.returncode == 0, f"{args}\n{proc.stdout}\n{proc.stderr}"
    return proc


def pip(python: Path, *args) -> subprocess.CompletedProcess:
    """This environment's pip acting on another interpreter's environment (which needs no pip)."""
    return run(sys.executable, "-m", "pip", "--python", python, "--disable-pip-version-check", *args)


@pytest.mark.slow
def test_companion_installs_alone_into_an_empty_venv(tmp_path):
    """The phone's install: one wheel into a venv that has nothing (not even pip), with no index to
    fetch from, so a single dependency would fail it. Its command works and every module came along."""
    src = tmp_path / "src" / "android_companion"  # built from a copy: the build leaves files behind
    shutil.copytree(COMPANION, src, ignore=shutil.ignore_patterns("__pycache__", "build", "*.egg-info"))
    run(sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
        "--disable-pip-version-check", "-w", tmp_path / "dist", src)
    [wheel] = (tmp_path / "dist").glob("*.whl")
    assert wheel.name == f"smsgw_companion-{android_companion.__version__}-py3-none-any.whl"

    run(sys.executable, "-m", "venv", "--without-pip", tmp_path / "phone")
    python = tmp_path / "phone" / "bin" / "python"
    assert json.loads(pip(python, "list", "--format=json").stdout) == []
    pip(python, "install", "--quiet", "--no-index", wheel)
    assert json.loads(pip(python, "list", "--format=json").stdout) == [
        {"name": "smsgw-companion", "version": android_companion.__version__}]

    home = tmp_path / "home"  # away from the source tree, so only the installed copy can be found
    home.mkdir()
    helped = run(tmp_path / "phone" / "bin" / "smsgw-companion", "--help", cwd=home)
    assert "usage: smsgw-companion" in helped.stdout and "pair" in helped.stdout
    code = ("import importlib, json, pkgutil, android_companion as c\n"
            "names = sorted(m.name for m in pkgutil.walk_packages(c.__path__, 'android_companion.'))\n"
            "for name in names: importlib.import_module(name)\n"
            "print(json.dumps([c.__file__, names]))")
    where, installed = json.loads(run(python, "-I", "-c", code, cwd=home).stdout)
    assert Path(where).is_relative_to(tmp_path / "phone")
    assert installed == companion_modules()


def test_server_distribution_leaves_the_companion_and_pgserver_to_others():
    """The installed metadata: `smsgw-companion` is the companion's command, not the server's, and the
    server asks for pgserver only with its `embedded` extra."""
    scripts = {ep.name: ep.dist.name for ep in importlib.metadata.entry_points(group="console_scripts")
               if ep.name.startswith("smsgw")}
    assert scripts == {"smsgw": "smsgw", "smsgw-companion": "smsgw-companion"}
    pgserver = [r for r in importlib.metadata.requires("smsgw") if r.startswith("pgserver")]
    assert pgserver and all('extra == "embedded"' in r for r in pgserver)


def test_without_pgserver_or_database_url_smsgw_names_the_extra(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "SMSGW_APP_DATABASE_URL")}
    env.update(SMSGW_DATA_DIR=str(tmp_path / "var"), PYTHONPATH=str(ROOT))
    proc = subprocess.run([sys.executable, "-c", SMSGW_WITHOUT_PGSERVER, "migrate"], env=env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2, proc.stderr
    assert "pip install 'smsgw[embedded]'" in proc.stderr and "DATABASE_URL" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "var" / "pg").exists()  # said before creating a cluster directory


def test_with_database_url_smsgw_runs_without_pgserver(cli_env, tmp_path):
    """A production host: DATABASE_URL set, pgserver never installed; the platform starts, loads
    every addon and migrates."""
    proc = subprocess.run([sys.executable, "-c", SMSGW_WITHOUT_PGSERVER, "migrate"], env=cli_env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "tenants: all up to date" in proc.stdout
