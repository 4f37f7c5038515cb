"""Bundle the demo shop's front end: ``npm ci`` (once per lock file), then esbuild.

The packages are the official ``@snowplow/browser-tracker``, its ecommerce plugin and
``@snowplow/signals-browser-plugin`` from npm (``web/package.json`` and its lock); nothing of
them is kept in the repository. ``web/dist/shop.js`` is rebuilt when a source is newer.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

from signals_stream.errors import SignalsStreamError

__all__ = ["BUNDLE", "WEB_DIR", "build_demo"]

WEB_DIR = Path(__file__).parent / "web"
BUNDLE = WEB_DIR / "dist" / "shop.js"
_INSTALLED = WEB_DIR / "node_modules" / ".package-lock.json"  # npm writes it on install
_ESBUILD = WEB_DIR / "node_modules" / ".bin" / "esbuild"


def build_demo(say: Callable[[str], None] = print) -> Path:
    """Install the npm packages if the lock changed, bundle if a source changed; the bundle.

    Raises:
        SignalsStreamError: npm is missing, or the install or the build failed (its output).
    """
    lock = WEB_DIR / "package-lock.json"
    if not _INSTALLED.exists() or _INSTALLED.stat().st_mtime < lock.stat().st_mtime:
        npm = shutil.which("npm")
        if npm is None:
            raise SignalsStreamError(
                "the demo shop is bundled from npm packages, and npm is not installed "
                "(Debian: apt-get install nodejs npm; or run `signals-stream dev --no-demo`)"
            )
        say("demo shop: installing its npm packages (npm ci)...")
        _run([npm, "ci", "--no-audit", "--no-fund"], "npm ci")
    sources = [*(WEB_DIR / "src").iterdir(), lock]
    if not BUNDLE.exists() or BUNDLE.stat().st_mtime < max(p.stat().st_mtime for p in sources):
        say("demo shop: bundling its front end (esbuild)...")
        _run(
            [
                str(_ESBUILD),
                "src/shop.js",
                "--bundle",
                "--format=iife",
                "--target=es2019",
                f"--outfile={BUNDLE.relative_to(WEB_DIR)}",
                "--log-level=warning",
            ],
            "esbuild",
        )
    return BUNDLE


def _run(command: list[str], what: str) -> None:
    done = subprocess.run(command, cwd=WEB_DIR, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SignalsStreamError(f"{what} failed ({done.returncode}):\n{done.stderr[-2000:]}")
