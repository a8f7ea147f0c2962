"""Issue 15: `.ci/run` passes on a clone without ../shared (the real-data tests skip with their
reason) and still refuses to skip them where ../shared/data exists."""

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
