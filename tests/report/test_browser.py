"""The report opened in a real headless browser (Debian's Chromium): every plotly figure draws, no script error.

The page reports on itself: `<body data-rendered="N">` once plotly has drawn its N figures, `data-errors="..."`
(and a visible red box) for any script error. The screenshot is kept as a CI artifact at
metrics/report/screenshot.png.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

CHROMIUM = Path("/usr/bin/chromium")
ROOT = Path(__file__).resolve().parents[2]
SCREENSHOT = ROOT / "metrics" / "report" / "screenshot.png"
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--enable-unsafe-swiftshader", "--disable-quic",
         "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--hide-scrollbars", "--virtual-time-budget=30000")

pytestmark = pytest.mark.skipif(not CHROMIUM.is_file(), reason="Debian's Chromium is not installed at "
                                "/usr/bin/chromium (apt-get install -y chromium)")


def chromium(page: Path, profile: Path, *args: str) -> subprocess.CompletedProcess:
    cmd = [str(CHROMIUM), *FLAGS, f"--user-data-dir={profile}", *args, page.resolve().as_uri()]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc


def body_tag(dom: str) -> str:
    m = re.search(r"<body[^>]*>", dom)
    assert m, dom[:500]
    return m.group(0)


def test_report_renders_without_errors(built, tmp_path):
    html_path, _ = built
    text = html_path.read_text()
    block = re.search(r'id="gcseg-figures">(.*?)</script>', text, re.S).group(1)
    expected = len(json.loads(block.replace("<\\/", "</")))

    dom = chromium(html_path, tmp_path / "profile", "--dump-dom").stdout
    body = body_tag(dom)
    assert "data-errors" not in body, body
    assert f'data-rendered="{expected}"' in body, body
    assert dom.count('class="main-svg"') >= expected  # plotly drew an SVG layer into every figure div

    shot = tmp_path / "screenshot.png"
    chromium(html_path, tmp_path / "profile", f"--screenshot={shot}", "--window-size=1400,2000")
    with Image.open(shot) as im:
        assert im.size == (1400, 2000)
        colours = len(np.unique(np.asarray(im.convert("RGB").resize((350, 500))).reshape(-1, 3), axis=0))
    assert colours > 50, "the screenshot looks blank"
    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(shot, SCREENSHOT)


def test_script_errors_are_detected(tmp_path):
    """The self-check is real: a page whose script throws is marked with data-errors and never rendered."""
    from gcseg.report.html import Page

    page = Page(title="broken")
    page.section("s", "S", page.figure("fig-x", {"data": [], "layout": {}}))
    path = tmp_path / "broken.html"
    path.write_text(page.render("throw new Error('boom from the bundle');"))
    body = body_tag(chromium(path, tmp_path / "profile", "--dump-dom").stdout)
    assert "boom from the bundle" in body and "plotly did not load" in body
    assert "data-rendered" not in body
