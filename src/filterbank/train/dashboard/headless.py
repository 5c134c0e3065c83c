"""The dashboard pages in a headless Chromium, and their controls from Python: what the
browser test and ``tools/dashboard_screenshots.py`` drive them with."""

from __future__ import annotations

import http.client
import json
import re
import subprocess
from pathlib import Path

_FLAGS = ["--headless=new", "--disable-gpu", "--no-sandbox", "--no-first-run",
          "--disable-extensions"]


def dump_dom(chromium: str, url: str, budget_ms: int = 5000, timeout: float = 180) -> str:
    """The page's DOM after its scripts ran for ``budget_ms`` of virtual time (the page must
    close its event stream: open it with ``?snapshot=1``)."""
    r = subprocess.run([chromium, *_FLAGS, f"--virtual-time-budget={budget_ms}",
                        "--dump-dom", url], capture_output=True, text=True, timeout=timeout)
    if r.returncode != 0 or "<html" not in r.stdout:
        raise RuntimeError(f"chromium --dump-dom failed ({r.returncode}): {r.stderr[-2000:]}")
    return r.stdout


def screenshot(chromium: str, url: str, png: Path, width: int, height: int,
               budget_ms: int = 8000, timeout: float = 180) -> None:
    """A ``width`` x ``height`` PNG of the page."""
    png.unlink(missing_ok=True)
    r = subprocess.run([chromium, *_FLAGS, "--hide-scrollbars", "--force-device-scale-factor=1",
                        f"--window-size={width},{height}", f"--virtual-time-budget={budget_ms}",
                        f"--screenshot={png}", url], capture_output=True, text=True,
                       timeout=timeout)
    if r.returncode != 0 or not png.exists():
        raise RuntimeError(f"chromium --screenshot failed ({r.returncode}): "
                           f"{r.stderr[-2000:]}")


def js_errors(dom: str) -> str | None:
    """The text of the page's ``#js-errors`` element (None when the page has none)."""
    m = re.search(r'<pre id="js-errors">(.*?)</pre>', dom, re.S)
    return None if m is None else m.group(1)


def post(url: str, path: str, body=None) -> int:
    """POST ``body`` (JSON) to ``path`` of the page at ``url`` with its token; the status."""
    host, rest = url.split("//", 1)[1].split("/", 1)
    token = rest.split("token=", 1)[1]
    conn = http.client.HTTPConnection(host, timeout=10)
    conn.request("POST", f"{path}?token={token}", body=json.dumps(body or {}))
    status = conn.getresponse().status
    conn.close()
    return status
