"""Colours of a brand: hex values checked, and their contrast held to WCAG 2.1 level AA.

A brand sets two colours: ``--brand`` (the top bar, buttons and links) and ``--brand-contrast``
(text on the brand colour). Both pairs people read must reach 4.5:1 (AA, normal text): the text
on the brand colour, and the brand colour as link text on the theme's page background. Themes
are held to the same rule by tests/test_themes.py, through :func:`theme_variables`.
"""

from __future__ import annotations

import re
from pathlib import Path

AA_TEXT = 4.5  # WCAG 2.1 1.4.3, normal text
HEX = re.compile(r"#[0-9a-f]{6}")
_ROOT = re.compile(r":root\s*\{([^}]*)\}")
_VARIABLE = re.compile(r"(--[a-z0-9-]+)\s*:\s*([^;]+?)\s*(?:;|$)")
CORE_CSS = Path(__file__).resolve().parents[2] / "core" / "static" / "app.css"


def parse_hex(value: str) -> str | None:
    """``#rrggbb`` in lowercase, from ``#RRGGBB`` or ``#rgb``; ``None`` for anything else."""
    value = (value or "").strip().lower()
    if re.fullmatch(r"#[0-9a-f]{3}", value):
        value = "#" + "".join(c * 2 for c in value[1:])
    return value if HEX.fullmatch(value) else None


def luminance(colour: str) -> float:
    """Relative luminance (WCAG 2.1) of ``#rrggbb``."""
    def channel(c: int) -> float:
        s = c / 255
        return s / 12.92 if s <= 0.04045 else ((s + 0.055) / 1.055) ** 2.4

    r, g, b = (int(colour[i:i + 2], 16) for i in (1, 3, 5))
    return 0.2126 * channel(r) + 0.7152 * channel(g) + 0.0722 * channel(b)


def contrast(a: str, b: str) -> float:
    """The contrast ratio of two ``#rrggbb`` colours, 1 to 21."""
    la, lb = sorted((luminance(a), luminance(b)), reverse=True)
    return (la + 0.05) / (lb + 0.05)


def css_variables(css: str) -> dict[str, str]:
    """The custom properties of every ``:root { ... }`` rule in ``css``, later ones winning."""
    found: dict[str, str] = {}
    for block in _ROOT.findall(re.sub(r"/\*.*?\*/", "", css, flags=re.S)):
        for name, value in _VARIABLE.findall(block):
            found[name] = value.strip().lower()
    return found


def theme_variables(themes_dir: Path, theme: str) -> dict[str, str]:
    """The CSS variables a page in ``theme`` sees: the core's, then the theme's own over them."""
    variables = css_variables(CORE_CSS.read_text())
    own = Path(themes_dir) / theme / "static" / "theme.css"
    if own.is_file():
        variables.update(css_variables(own.read_text()))
    return {k: (parse_hex(v) or v) for k, v in variables.items()}
