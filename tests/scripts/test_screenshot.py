"""The README's chat-UI walkthrough (scripts/screenshot.py): a real gateway, a real page, a real Chromium."""

from __future__ import annotations

import struct
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "scripts"))
import screenshot  # noqa: E402

pytestmark = pytest.mark.skipif(screenshot.find_chromium() is None,
                                reason="chromium is not installed (Debian: apt-get install -y chromium)")


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", data[16:24])


def test_the_walkthrough_ends_in_a_screenshot_of_a_streamed_reply_and_a_tool_call(tmp_path):
    out, dom = tmp_path / "shot.png", tmp_path / "dom.html"
    r = subprocess.run([sys.executable, str(REPO / "scripts" / "screenshot.py"), "--out", str(out),
                        "--dump-dom", str(dom)], capture_output=True, text=True, timeout=180)
    assert r.returncode == 0, r.stderr
    assert png_size(out) == (screenshot.WIDTH, screenshot.HEIGHT)
    page = dom.read_text()
    # what the page rendered came through the gateway's /v1/chat/completions, streamed
    assert '<div class="msg assistant">You said: Hello Exoclaw! What can you do?' in page
    assert "Tool echo returned: a tool ran inside the WASM sandbox" in page
    assert page.count('class="meta">') == 2 and "error" not in page.split("<script>")[0].split("<main")[1]


def test_the_committed_screenshot_exists():
    assert png_size(REPO / "docs" / "chat-ui.png") == (screenshot.WIDTH, screenshot.HEIGHT)
