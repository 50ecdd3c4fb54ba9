"""The HTML report renders in a real browser: headless Chromium (Debian's ``chromium``, which
``.ci/run`` installs) screenshots a report with its plots, and the screenshot is not blank.

Without Chromium the test is skipped, unless ``NASATLAS_REQUIRE_BROWSER`` is set (CI sets it), where a
missing browser is a failure."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from nasatlas.studies.cli import main

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def _chromium() -> str:
    if CHROMIUM is None:
        if os.environ.get("NASATLAS_REQUIRE_BROWSER"):
            pytest.fail("NASATLAS_REQUIRE_BROWSER is set but chromium is not installed (apt-get install chromium)")
        pytest.skip("headless Chromium is not installed (Debian: apt-get install chromium)")
    return CHROMIUM


def screenshot(html: Path, png: Path, size: tuple[int, int] = (1200, 1800)) -> None:
    """Render ``html`` headless (flags that keep Chromium off the closed network) into ``png``."""
    profile = png.parent / "chromium-profile"
    cmd = [_chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync",
           f"--user-data-dir={profile}", "--hide-scrollbars", f"--window-size={size[0]},{size[1]}",
           f"--screenshot={png}", html.resolve().as_uri()]
    subprocess.run(cmd, check=True, capture_output=True, timeout=120)


def test_report_html_renders_with_its_plots(tmp_path: Path) -> None:
    _chromium()
    out = tmp_path / "qs"
    assert main(["study", "quickstart", "--profile", "smoke", "--out", str(out), "--quiet"]) == 0
    assert main(["report", str(out)]) == 0
    html = out / "report.html"
    assert "<img" in html.read_text() and (out / "best_so_far.png").is_file()
    ink, colour = _measure(html, tmp_path / "shot.png")
    # text and tables (dark ink) and the matplotlib plot (the only coloured pixels: its curves)
    assert ink > 0.01 and colour > 1e-4, f"blank report or no plot (ink {ink:.4f}, colour {colour:.5f})"
    # the checks can tell a failed page: a blank page and Chromium's file-not-found page fail them
    blank = tmp_path / "blank.html"
    blank.write_text("<!doctype html><html><body></body></html>")
    assert _measure(blank, tmp_path / "blank.png") == (0.0, 0.0)
    ink, colour = _measure(tmp_path / "missing.html", tmp_path / "missing.png")
    assert colour == 0.0 and ink < 0.01


def _measure(html: Path, png: Path) -> tuple[float, float]:
    """Share of dark pixels and of saturated (coloured) pixels of a full-page screenshot."""
    from PIL import Image
    screenshot(html, png, size=(1200, 8000))
    rgb = np.asarray(Image.open(png).convert("RGB"), dtype=float)
    grey = rgb.mean(axis=2)
    return float((grey < 200).mean()), float(((rgb.max(axis=2) - rgb.min(axis=2)) > 80).mean())
