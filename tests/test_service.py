"""`simclip-server --install-service / --uninstall-service`: the login service per platform.

HOME and the XDG folders are in tmp_path; `systemctl` and `launchctl` are fake scripts on PATH
that record their arguments (the fake launchctl remembers what it loaded). macOS and Windows are
tested by setting `sys.platform`.
"""

import os
import plistlib
import shlex
import shutil
import subprocess
import sys

import pytest

from backend import serve, service

FAKE_SYSTEMCTL = """#!/bin/bash
echo "$*" >> "$FAKE_LOG"
if [ "$2" = show-environment ] && [ -n "$FAKE_NO_USER_MANAGER" ]; then
  echo "Failed to connect to bus: No medium found" >&2; exit 1
fi
exit 0
"""
FAKE_LAUNCHCTL = """#!/bin/bash
echo "$*" >> "$FAKE_LOG"
case "$1" in
  print) [ -f "$FAKE_LOADED" ] || { echo "Could not find service" >&2; exit 113; } ;;
  bootstrap) touch "$FAKE_LOADED" ;;
  bootout) rm -f "$FAKE_LOADED" ;;
esac
"""


@pytest.fixture
def home(tmp_path, monkeypatch):
    """A user's home in tmp_path with fake service managers on PATH; returns a namespace."""
    home = tmp_path / "home"
    home.mkdir()
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, body in (("systemctl", FAKE_SYSTEMCTL), ("launchctl", FAKE_LAUNCHCTL)):
        (bin_dir / name).write_text(body)
        (bin_dir / name).chmod(0o755)
    for var in service.PASSED_ENV + ("XDG_STATE_HOME", "APPDATA", "LOCALAPPDATA"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / ".config"))
    monkeypatch.setenv("XDG_STATE_HOME", str(home / ".local" / "state"))
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_LOG", str(tmp_path / "calls.log"))
    monkeypatch.setenv("FAKE_LOADED", str(tmp_path / "launchd-loaded"))
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)

    class Home:
        root, cwd, log = home, work, tmp_path / "calls.log"
        unit = home / ".config" / "systemd" / "user" / "simclip-server.service"

        def calls(self):
            """The fake managers' argv lines since the last call, then forget them."""
            lines = self.log.read_text().splitlines() if self.log.exists() else []
            self.log.unlink(missing_ok=True)
            return lines

    return Home()


def unit_value(text, key):
    values = [line.partition("=")[2] for line in text.splitlines() if line.startswith(key + "=")]
    assert len(values) == 1, text
    return values[0]


def exec_start(text):
    """ExecStart's argv the way systemd reads it (our quoting: C-style double quotes, %% and $$)."""
    return [a.replace("$$", "$").replace("%%", "%") for a in shlex.split(unit_value(text, "ExecStart"))]


def test_the_service_flags_are_off_by_default_and_exclusive():
    args = serve.parse_args([])
    assert not args.install_service and not args.uninstall_service
    with pytest.raises(SystemExit):
        serve.parse_args(["--install-service", "--uninstall-service"])


def test_install_writes_a_user_unit_running_this_python_with_the_options_and_starts_it(home, capsys):
    (home.cwd / "head.safetensors").write_bytes(b"x")
    rc = serve.main(["--checkpoint", "head.safetensors", "--install-service", "--port", "9000",
                     "--device", "cpu", "--pretrained", "openai"])
    out = capsys.readouterr().out
    assert rc == 0, out
    text = home.unit.read_text()
    assert exec_start(text) == [sys.executable, "-m", "backend.serve",
                                "--checkpoint", str(home.cwd / "head.safetensors"),
                                "--port", "9000", "--device", "cpu", "--pretrained", "openai"]
    assert "Restart=on-failure" in text and "WantedBy=default.target" in text
    log = home.root / ".local" / "state" / "simclip" / "server.log"
    assert unit_value(text, "StandardOutput") == f"append:{log}"
    assert unit_value(text, "WorkingDirectory") == str(home.cwd)
    # the token lives under XDG_CONFIG_HOME: the service must see the same one
    assert unit_value(text, "Environment") == f"XDG_CONFIG_HOME={home.root / '.config'}"
    assert home.calls() == ["--user show-environment", "--user daemon-reload",
                            "--user enable --now simclip-server.service",
                            "--user restart simclip-server.service"]
    assert f"installed the login service {home.unit}" in out and str(log) in out


def test_exec_start_quotes_spaces_dollars_percents_and_quotes(home):
    odd = home.cwd / 'my "cache" $HOME 50% \\ dir'
    result = service.install(["--install-service", "--cache-dir", odd.name, "--port=8500"])
    argv = exec_start(result.path.read_text())
    assert argv[3:] == ["--cache-dir", str(odd), "--port=8500"]
    line = "ExecStart=" + unit_value(result.path.read_text(), "ExecStart")
    assert "$$HOME" in line and "50%%" in line  # no expansion, no specifier


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze not installed")
def test_systemd_analyze_verifies_the_unit(home):
    (home.cwd / "head 1.safetensors").write_bytes(b"x")
    result = service.install(["--checkpoint", "head 1.safetensors", "--cache-dir", "a $b 5%"])
    proc = subprocess.run(["systemd-analyze", "verify", str(result.path)], capture_output=True,
                          text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_reinstall_with_the_same_options_changes_nothing_and_new_options_restart_it(home, capsys):
    assert serve.main(["--install-service", "--port", "9000"]) == 0
    first = home.unit.read_text()
    home.calls()
    capsys.readouterr()
    assert serve.main(["--install-service", "--port", "9000"]) == 0
    assert "already installed with these options" in capsys.readouterr().out
    assert home.unit.read_text() == first
    assert "--user restart simclip-server.service" not in home.calls()
    assert serve.main(["--install-service", "--port", "9001"]) == 0
    assert exec_start(home.unit.read_text())[-2:] == ["--port", "9001"]
    assert "--user restart simclip-server.service" in home.calls()


def test_uninstall_round_trip_and_uninstall_when_nothing_is_installed_says_so(home, capsys):
    assert serve.main(["--install-service"]) == 0
    home.calls()
    capsys.readouterr()
    assert serve.main(["--uninstall-service"]) == 0
    assert not home.unit.exists()
    assert home.calls() == ["--user show-environment", "--user disable --now simclip-server.service",
                            "--user show-environment", "--user daemon-reload"]
    assert "no longer starts at login" in capsys.readouterr().out
    assert serve.main(["--uninstall-service"]) == 0
    assert "no simclip-server service is installed" in capsys.readouterr().out
    assert home.calls() == []


def test_without_a_user_service_manager_the_unit_is_written_and_the_enable_command_shown(
        home, capsys, monkeypatch):
    monkeypatch.setenv("FAKE_NO_USER_MANAGER", "1")
    assert serve.main(["--install-service"]) == 0
    out = capsys.readouterr().out
    assert home.unit.is_file()
    assert "systemctl --user daemon-reload && systemctl --user enable --now simclip-server.service" in out
    assert home.calls() == ["--user show-environment"]


def test_a_missing_checkpoint_is_refused_before_anything_is_written(home, capsys):
    assert serve.main(["--install-service", "--checkpoint", "nope.safetensors"]) == 1
    assert "--checkpoint nope.safetensors: no such file" in capsys.readouterr().err
    assert not home.unit.exists() and home.calls() == []


def test_a_failing_systemctl_gives_its_message_and_exit_1(home, capsys, tmp_path):
    (tmp_path / "bin" / "systemctl").write_text('#!/bin/bash\n[ "$2" = show-environment ] && exit 0\n'
                                                'echo "Unit file is masked." >&2; exit 1\n')
    assert serve.main(["--install-service"]) == 1
    assert "Unit file is masked." in capsys.readouterr().err


def test_macos_gets_a_launch_agent_bootstrapped_in_the_gui_domain(home, monkeypatch, capsys):
    monkeypatch.setattr(sys, "platform", "darwin")
    assert serve.main(["--install-service", "--port", "9000"]) == 0
    plist_path = home.root / "Library" / "LaunchAgents" / "org.simclip.server.plist"
    plist = plistlib.loads(plist_path.read_bytes())
    assert plist["Label"] == "org.simclip.server"
    assert plist["ProgramArguments"] == [sys.executable, "-m", "backend.serve", "--port", "9000"]
    assert plist["RunAtLoad"] is True and plist["KeepAlive"] == {"SuccessfulExit": False}
    assert plist["StandardErrorPath"] == str(home.root / "Library" / "Logs" / "simclip" / "server.log")
    domain = f"gui/{os.getuid()}"
    assert home.calls() == [f"print {domain}/org.simclip.server", f"bootstrap {domain} {plist_path}"]
    assert serve.main(["--install-service", "--port", "9000"]) == 0  # loaded, unchanged: no-op
    assert home.calls() == [f"print {domain}/org.simclip.server"]
    assert serve.main(["--install-service", "--port", "9001"]) == 0  # changed: reloaded
    assert home.calls() == [f"print {domain}/org.simclip.server", f"bootout {domain}/org.simclip.server",
                            f"bootstrap {domain} {plist_path}"]
    assert serve.main(["--uninstall-service"]) == 0
    assert not plist_path.exists()
    assert home.calls() == [f"print {domain}/org.simclip.server", f"bootout {domain}/org.simclip.server"]
    capsys.readouterr()
    assert serve.main(["--uninstall-service"]) == 0
    assert "no simclip-server service is installed" in capsys.readouterr().out


def test_windows_gets_a_hidden_startup_script(home, monkeypatch, tmp_path):
    monkeypatch.setattr(sys, "platform", "win32")
    monkeypatch.setenv("APPDATA", str(tmp_path / "Roaming"))
    monkeypatch.setenv("LOCALAPPDATA", str(tmp_path / "Local"))
    assert serve.main(["--install-service", "--port", "9000"]) == 0
    vbs = tmp_path / "Roaming" / "Microsoft" / "Windows" / "Start Menu" / "Programs" / "Startup" / "simclip-server.vbs"
    cmd = tmp_path / "Local" / "simclip" / "simclip-server.cmd"
    assert f'.Run """{cmd}""", 0, False' in vbs.read_text()  # 0: no console window
    lines = cmd.read_bytes().decode().split("\r\n")  # CRLF, as cmd.exe reads it
    log = tmp_path / "Local" / "simclip" / "logs" / "server.log"
    assert f'"{sys.executable}" "-m" "backend.serve" "--port" "9000" >> "{log}" 2>&1' in lines
    assert f'cd /d "{home.cwd}"' in lines
    assert home.calls() == []
    assert serve.main(["--uninstall-service"]) == 0
    assert not vbs.exists() and not cmd.exists()
