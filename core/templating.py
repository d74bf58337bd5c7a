"""Jinja2 environments: lookup theme → addons → core, one environment per theme.

A template name resolves in the theme first, then in each addon's template
dirs (dependency order), then in ``core/templates``. The prefix ``core/``
always reaches the core original, so a theme can ``{% extends "core/base.html" %}``
and override only some blocks.
"""

from __future__ import annotations

from pathlib import Path

import jinja2

from . import charts

CORE_TEMPLATES = Path(__file__).parent / "templates"


class Templates:
    def __init__(self, themes_dir: Path, addon_dirs: list[Path], default_theme: str = "default"):
        self.themes_dir = Path(themes_dir)
        self.addon_dirs = [Path(d) for d in addon_dirs]
        self.default_theme = default_theme
        self._envs: dict[str, jinja2.Environment] = {}
        self.globals: dict = {}

    def themes(self) -> list[str]:
        if not self.themes_dir.is_dir():
            return []
        return sorted(p.name for p in self.themes_dir.iterdir() if (p / "theme.txt").exists() or p.is_dir())

    def env(self, theme: str | None = None) -> jinja2.Environment:
        theme = theme if theme and (self.themes_dir / theme).is_dir() else self.default_theme
        env = self._envs.get(theme)
        if env is None:
            chain = [str(self.themes_dir / theme / "templates")] + [str(d) for d in self.addon_dirs]
            chain.append(str(CORE_TEMPLATES))
            loader = jinja2.ChoiceLoader([
                jinja2.PrefixLoader({"core": jinja2.FileSystemLoader(str(CORE_TEMPLATES))}, delimiter="/"),
                jinja2.FileSystemLoader(chain),
            ])
            env = jinja2.Environment(loader=loader, autoescape=jinja2.select_autoescape(default=True),
                                     undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
            env.globals.update(self.globals)
            env.globals.update(chart_bars=charts.bars, chart_lines=charts.lines)  # _charts.html
            env.globals["theme"] = theme
            self._envs[theme] = env
        return env

    def render(self, name: str, theme: str | None = None, **context) -> str:
        return self.env(theme).get_template(name).render(**context)
