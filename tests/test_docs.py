"""The documentation: the site builds in strict mode, the configuration reference is the
code's, and no page points outside the repository."""
from __future__ import annotations

import re
import shutil
import subprocess
import sys

from conftest import ROOT

LINK = re.compile(r"\]\(([^)#\s]+)")


def _build(root, out) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-f", str(root / "mkdocs.yml"),
                           "-d", str(out)], cwd=root, capture_output=True, text=True)


def test_the_site_builds_strictly(tmp_path):
    r = _build(ROOT, tmp_path / "site")
    assert r.returncode == 0, r.stderr[-3000:]
    assert (tmp_path / "site" / "configuration" / "index.html").is_file()


def test_a_broken_link_fails_the_build(tmp_path):
    copy = tmp_path / "repo"
    copy.mkdir()
    shutil.copy(ROOT / "mkdocs.yml", copy)
    shutil.copytree(ROOT / "docs", copy / "docs")
    page = copy / "docs" / "limits.md"
    page.write_text(page.read_text() + "\nSee [a page that is not there](missing.md).\n")
    r = _build(copy, tmp_path / "site")
    assert r.returncode != 0 and "missing.md" in r.stderr


def test_the_configuration_reference_is_generated_from_the_code():
    from btsee.config_reference import PAGE, render

    assert PAGE.read_text() == render(), "docs/configuration.md is stale: run python -m btsee.config_reference"
    for key in ("data.image_fit", "hardware.rtl_images", "calibration.max_drop", "exits.points"):
        assert f"`{key}`" in render()


def test_every_key_of_the_configuration_is_documented():
    from btsee.config_reference import render

    undocumented = [line for line in render().splitlines() if line.startswith("| `") and line.endswith("|  |")]
    assert not undocumented, undocumented


UP_PATH = re.compile(r"(?<![.\w/])(?:\.\./)+[\w.-]+")
"""A path that climbs folders (../x, ../../x), wherever a page mentions it (not an ellipsis: .../x)."""


def test_no_page_points_outside_the_repository():
    pages = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    for page in pages:
        text = page.read_text()
        assert "DESIGN.md" not in text, page  # the notes' name outside the repository
        for mention in UP_PATH.findall(text):  # in links and in prose: a clone has only the repository
            inside = [p for p in ((page.parent / mention).resolve(), (ROOT / mention).resolve())
                      if p.is_relative_to(ROOT) and p.exists()]  # from the page's folder or the root
            assert inside, f"{page.name}: {mention} is not in the repository"
        for target in LINK.findall(text):
            if re.match(r"[a-z]+://", target):
                continue
            resolved = (page.parent / target).resolve()
            assert resolved.is_relative_to(ROOT) and resolved.exists(), f"{page.name}: link to {target}"
