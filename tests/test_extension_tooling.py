"""The extension's own checks, so `pytest` runs the whole suite: node unit tests and the linters."""

import re
import shutil
import subprocess
from pathlib import Path

import pytest

EXTENSION = Path(__file__).resolve().parents[1] / "extension"


@pytest.fixture(scope="module")
def npm():
    npm = shutil.which("npm")
    if npm is None:
        pytest.fail("npm is not installed (apt-get install nodejs npm)")
    if not (EXTENSION / "node_modules" / ".bin" / "web-ext").exists():
        pytest.fail("extension dev tools missing: run `cd extension && npm ci`")
    return npm


def _run(npm, script):
    proc = subprocess.run([npm, "run", "--silent", script], cwd=EXTENSION, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, f"npm run {script} failed:\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


def test_extension_unit_tests_pass(npm):
    out = _run(npm, "test")
    assert "# fail 0" in out and "# pass" in out


@pytest.mark.lint
def test_extension_passes_eslint_and_web_ext_lint(npm):
    out = _run(npm, "lint")
    assert re.search(r"^errors\s+0\s*$", out, re.M), out  # web-ext's summary table


def test_vendored_libraries_are_the_published_builds_of_the_pinned_packages(npm):
    """extension/vendor holds npm packages' own builds, byte for byte (`npm run vendor` after a
    version change in package.json): a library the extension ships is never edited by hand."""
    import json

    pinned = json.loads((EXTENSION / "package.json").read_text())["dependencies"]
    vendored = {"tldts": ["dist/index.esm.min.js", "LICENSE"]}
    assert set(pinned) == set(vendored)
    for name, files in vendored.items():
        package = EXTENSION / "node_modules" / name
        assert json.loads((package / "package.json").read_text())["version"] == pinned[name]
        for file in files:
            ours = EXTENSION / "vendor" / name / Path(file).name
            assert ours.read_bytes() == (package / file).read_bytes(), f"{ours} is not {name}'s {file}"
