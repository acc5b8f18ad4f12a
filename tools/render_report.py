"""Screenshot a report page in headless Chromium: ``python tools/render_report.py PAGE.html OUT.png``.

Opens the page from disk (``file://``), with the network switched off, and saves a PNG of the
whole window. Without Chromium (Debian package ``chromium``) it prints that the screenshot was
SKIPPED and exits 0, or 3 with ``--require`` (for a check that must not pass silently).

    python tools/render_report.py out/P001.html out/P001.png --width 1200 --height 4000
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
EXIT_MISSING = 3


def find_chromium() -> str | None:
    """The first Chromium-like browser on PATH (or /usr/bin/chromium), else None."""
    for name in CANDIDATES:
        found = shutil.which(name)
        if found:
            return found
    return "/usr/bin/chromium" if Path("/usr/bin/chromium").is_file() else None


def screenshot(page: Path, out: Path, *, width: int = 1200, height: int = 3000,
               browser: str | None = None, timeout: float = 120.0) -> Path:
    """Render ``page`` to ``out`` (PNG) with headless Chromium; returns ``out``.

    Raises
    ------
    FileNotFoundError
        No Chromium (``browser`` None and none on PATH).
    RuntimeError
        Chromium ran but wrote no screenshot (its last output lines in the message).
    """
    browser = browser or find_chromium()
    if browser is None:
        raise FileNotFoundError("chromium not found (install the Debian package 'chromium')")
    out = out.resolve()
    out.unlink(missing_ok=True)
    with tempfile.TemporaryDirectory(prefix="mrparotid-chromium-") as profile:
        cmd = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
               "--no-first-run", "--disable-extensions", "--disable-dev-shm-usage",
               "--proxy-server=127.0.0.1:9", "--proxy-bypass-list=<-loopback>",  # no network
               f"--user-data-dir={profile}", f"--window-size={width},{height}",
               f"--screenshot={out}", page.resolve().as_uri()]
        run = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    if not out.is_file():
        tail = "\n".join((run.stderr or run.stdout).strip().splitlines()[-5:])
        raise RuntimeError(f"chromium wrote no screenshot (exit {run.returncode}): {tail}")
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("page", type=Path)
    ap.add_argument("out", type=Path)
    ap.add_argument("--width", type=int, default=1200)
    ap.add_argument("--height", type=int, default=3000)
    ap.add_argument("--require", action="store_true",
                    help=f"exit {EXIT_MISSING} instead of 0 when Chromium is missing")
    a = ap.parse_args(argv)
    if not a.page.is_file():
        print(f"render_report: no such page: {a.page}", file=sys.stderr)
        return 2
    if find_chromium() is None:
        print("render_report: SKIPPED: chromium not found (install the Debian package 'chromium'); "
              "no screenshot written")
        return EXIT_MISSING if a.require else 0
    try:
        out = screenshot(a.page, a.out, width=a.width, height=a.height)
    except (RuntimeError, subprocess.TimeoutExpired) as exc:
        print(f"render_report: failed: {exc}", file=sys.stderr)
        return 1
    print(f"render_report: {out} ({out.stat().st_size / 1024:.0f} KiB, {a.width}x{a.height})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
