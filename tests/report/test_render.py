"""``tools/render_report.py``: a report page in headless Chromium, and a clear skip without it."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from mrparotid.report.html import write_patient_report

TOOL = Path(__file__).resolve().parents[2] / "tools" / "render_report.py"


def load_tool():
    spec = importlib.util.spec_from_file_location("render_report", TOOL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


render = load_tool()


def test_without_chromium_the_screenshot_is_skipped_and_says_so(tmp_path, monkeypatch, capsys):
    page = tmp_path / "p.html"
    page.write_text("<p>x</p>", encoding="utf-8")
    monkeypatch.setattr(render, "find_chromium", lambda: None)
    assert render.main([str(page), str(tmp_path / "p.png")]) == 0
    assert "SKIPPED: chromium not found" in capsys.readouterr().out
    assert render.main([str(page), str(tmp_path / "p.png"), "--require"]) == render.EXIT_MISSING
    assert not (tmp_path / "p.png").exists()


@pytest.mark.skipif(render.find_chromium() is None,
                    reason="chromium is not installed (Debian package 'chromium'): no screenshot")
def test_a_report_page_renders_in_headless_chromium(explained, tmp_path):
    page = write_patient_report(tmp_path, explained.evidence, explained.report, explained.cams,
                                explained.loaded)
    shot = tmp_path / "shot.png"
    assert render.main([str(page), str(shot), "--width", "900", "--height", "1400"]) == 0
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert (int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")) == (900, 1400)
    assert len(data) > 20_000          # a rendered page, not a blank window
