"""Regenerate docs/dashboard.png: the dashboard of 15 synthetic runs (three lineages) in headless Chromium.

    python benchmarks/dashboard_screenshot.py [--phone PATH]   # needs /usr/bin/chromium (make system-deps)

The comparison shows the branches of the second lineage over their root's history; with
--phone, also a 390-px-wide picture at PATH.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from synthetic_runs import make_runs  # noqa: E402
from playwright.sync_api import sync_playwright  # noqa: E402

from mission_gym.dashboard import generate_unified_dashboard  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
OUTPUT = Path(__file__).resolve().parents[1] / "docs" / "dashboard.png"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, default=OUTPUT, help="where the desktop picture goes")
    parser.add_argument("--phone", type=Path, help="also write a 390-px-wide picture here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "runs"
        names = make_runs(root, 15, 15, lines=200, seed=3)
        url = generate_unified_dashboard(root).resolve().as_uri()
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
            shots = [(args.output, 1280, 1700)] + ([(args.phone, 390, 3000)] if args.phone else [])
            for path, width, height in shots:
                page = browser.new_page(viewport={"width": width, "height": 900})
                page.goto(url)
                page.locator(f'button.pick-lineage[value="{names[5]}"]').click()
                page.locator(f'input.pick[value="{names[5]}"]').uncheck()  # the root: drawn as the branches' history
                page.locator("#smooth").fill("0.6")
                page.locator("#smooth").dispatch_event("input")
                page.mouse.move(width * 0.55, 300)  # a hover shows the values in the legend
                page.screenshot(path=str(path), full_page=True, clip={"x": 0, "y": 0, "width": width, "height": height})
                page.close()
            browser.close()
    print(f"wrote {args.output}" + (f" and {args.phone}" if args.phone else ""))


if __name__ == "__main__":
    main()
