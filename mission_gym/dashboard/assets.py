"""The browser code inlined into the page: uPlot (pinned in package.json, installed by `npm ci`, which
`make install` runs) and the page's own script and style, read once per process.

The page allows scripts only by the SHA-256 of their text (Content-Security-Policy), so `script_hash`
is computed from exactly the text that is inlined.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from mission_gym.errors import MissionGymError

_HERE = Path(__file__).resolve().parent
UPLOT_DIR = _HERE.parents[1] / "node_modules" / "uplot"
_UPLOT_FILES = ("dist/uPlot.iife.min.js", "dist/uPlot.min.css", "LICENSE")


@dataclass(frozen=True)
class Assets:
    """Texts ready to inline: scripts (uPlot's with its licence in a comment first), styles."""

    uplot_js: str
    uplot_css: str
    app_js: str
    page_css: str


@cache
def load_assets() -> Assets:
    """The inlined code; raises MissionGymError naming the missing file and the fix when uPlot is absent."""
    missing = [name for name in _UPLOT_FILES if not (UPLOT_DIR / name).is_file()]
    if missing:
        raise MissionGymError(
            f"the dashboard's chart library is missing: {UPLOT_DIR / missing[0]} not found; "
            "install it with `make install` (or `npm ci` in the repository root)"
        )
    js, css, licence = (_read(UPLOT_DIR / name) for name in _UPLOT_FILES)
    uplot_js = f"/* uPlot, inlined from node_modules/uplot. Its licence:\n{licence.replace('*/', '* /')}\n*/\n{js}"
    return Assets(uplot_js, css, _read(_HERE / "app.js"), _read(_HERE / "page.css"))


def _read(path: Path) -> str:
    text = path.read_text(encoding="utf-8")
    if "</script" in text.lower() or "</style" in text.lower():
        raise MissionGymError(f"{path} contains a closing </script> or </style> tag and cannot be inlined")
    return text


def script_hash(text: str) -> str:
    """The CSP source allowing exactly this inline script."""
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode("utf-8")).digest()).decode("ascii") + "'"
