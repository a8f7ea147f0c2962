"""`.ci/run`: it passes on a clone without ../shared (the real-data tests skip with their reason)
and still refuses to skip them where ../shared/data exists (issue 15); it prints each stage's
time and stops at the first failing stage (issue 19)."""

import re
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _require_line():
    lines = [line for line in (REPO / ".ci" / "run").read_text().splitlines()
             if "SIMCLIP_REQUIRE_SHARED_DATA=1" in line and not line.lstrip().startswith("#")]
    assert len(lines) == 1, lines
    return lines[0]


def _required_in(tmp_path, with_shared):
    clone = tmp_path / "work" / "clone"
    clone.mkdir(parents=True)
    if with_shared:
        (tmp_path / "work" / "shared" / "data").mkdir(parents=True)
    script = f"{_require_line()}\necho \"${{SIMCLIP_REQUIRE_SHARED_DATA:-unset}}\""
    out = subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=clone,
                         capture_output=True, text=True, check=True, env={"PATH": "/usr/bin:/bin"})
    return out.stdout.strip()


def test_ci_requires_the_shared_data_only_where_it_exists(tmp_path):
    assert _required_in(tmp_path / "a", with_shared=True) == "1"
    assert _required_in(tmp_path / "b", with_shared=False) == "unset"


def _run_stages(tmp_path, body):
    """Run `body` after .ci/run's stage functions, under the script's own shell options."""
    text = (REPO / ".ci" / "run").read_text()
    functions = text[text.index('stage_name=""'):text.index("trap end_stage EXIT\n")] + "trap end_stage EXIT\n"
    return subprocess.run(["bash", "-c", f"set -euo pipefail\n{functions}{body}"], cwd=tmp_path,
                          capture_output=True, text=True, env={"PATH": "/usr/bin:/bin"})


def test_ci_prints_each_stage_time_and_stops_at_the_first_failing_stage(tmp_path):
    ok = _run_stages(tmp_path, 'stage "lint"\ntrue\nstage "unit"\necho tested\n')
    assert ok.returncode == 0, ok.stderr
    assert re.fullmatch(r"== lint\n-- lint: \d+ s\n== unit\ntested\n-- unit: \d+ s\n", ok.stdout), ok.stdout
    failed = _run_stages(tmp_path, 'stage "lint"\n(exit 3)\nstage "unit"\necho tested\n')
    assert failed.returncode == 3
    assert re.fullmatch(r"== lint\n-- lint: \d+ s\n", failed.stdout), failed.stdout


def test_ci_times_every_stage_it_runs():
    stages = re.findall(r'^stage "([^"]+)"$', (REPO / ".ci" / "run").read_text(), re.M)
    assert stages == ["system packages", "python environment", "extension tooling",
                      "stage 1/3: linters (ruff, eslint, web-ext lint)",
                      "stage 2/3: unit and integration tests",
                      "stage 3/3: browser end-to-end tests (Chromium, Firefox)"]
    assert not re.search(r'^echo "== ', (REPO / ".ci" / "run").read_text(), re.M)


def test_contributing_installs_what_ci_installs():
    """A contributor who follows CONTRIBUTING.md runs the tests CI runs (none skip for a
    missing extra or system package)."""
    ci, contributing = ((REPO / name).read_text() for name in (".ci/run", "CONTRIBUTING.md"))
    extras = [re.findall(r"pip install (?:-q )?-e '\.\[([\w,]+)\]'", text) for text in (ci, contributing)]
    assert extras[0] == extras[1] and len(extras[0]) == 1, extras
    apt_ci = set(re.search(r"apt_pkgs=\(([^)]*)\)", ci)[1].split())
    apt_contributing = set(re.search(r"apt-get install -y ([^\n]*)", contributing)[1].split())
    assert apt_ci == apt_contributing, (apt_ci, apt_contributing)
