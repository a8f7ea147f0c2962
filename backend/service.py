"""Start simclip-server at login, on the user's request only (never by default).

    simclip-server --install-service [--checkpoint head.safetensors --port 8478 ...]
    simclip-server --uninstall-service

The service runs this same Python (`sys.executable -m backend.serve`) with the options given
beside --install-service, from the folder it was installed in, and appends its output to a log
file in the user's state folder (`get_log_path`). One per user, in the user's own login session:

- Linux: a systemd user unit, $XDG_CONFIG_HOME/systemd/user/simclip-server.service, enabled with
  `systemctl --user enable --now`; Restart=on-failure, at most 5 starts in 5 minutes.
- macOS: a LaunchAgent, ~/Library/LaunchAgents/org.simclip.server.plist, loaded with
  `launchctl bootstrap gui/<uid>`; restarted when it exits with an error.
- Windows: a script in the Startup folder (%APPDATA%\\Microsoft\\Windows\\Start Menu\\Programs\\
  Startup\\simclip-server.vbs) that runs simclip-server.cmd (in the state folder) without a
  console window.
"""

import os
import plistlib
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

SERVICE_NAME = "simclip-server"
UNIT_NAME = f"{SERVICE_NAME}.service"
LAUNCHD_LABEL = "org.simclip.server"
# Options of simclip-server that name a file or folder: made absolute, so the service finds them
# whatever its working folder.
PATH_OPTIONS = ("--checkpoint", "--pretrained", "--model", "--calibration", "--cache-dir",
                "--weights-cache-dir", "--config-dir")
SERVICE_FLAGS = ("--install-service", "--uninstall-service")
# Environment the server reads that a login session may not have: passed on when set.
PASSED_ENV = ("XDG_CONFIG_HOME", "XDG_CACHE_HOME", "HF_HOME", "HF_HUB_CACHE", "HF_HUB_OFFLINE",
              "HF_ENDPOINT", "SIMCLIP_DATASETS_BASE_URL")
START_LIMIT = (5, 300)  # systemd: at most 5 starts in 300 s, then it stays failed


class ServiceError(RuntimeError):
    """The service could not be installed or removed (the message says what to do)."""


@dataclass
class Result:
    """What install/uninstall did: the file, the commands run, and lines for the user."""

    path: Path
    changed: bool
    commands: list
    messages: list


def get_platform():
    """'linux', 'darwin' or 'win32' (other Unix systems are treated as Linux)."""
    return sys.platform if sys.platform in ("darwin", "win32") else "linux"


def get_log_path(platform=None):
    """The service's log file: $XDG_STATE_HOME/simclip/server.log (Linux, default
    ~/.local/state), ~/Library/Logs/simclip/server.log (macOS), %LOCALAPPDATA%\\simclip\\logs\\
    server.log (Windows)."""
    platform = platform or get_platform()
    if platform == "darwin":
        return Path.home() / "Library" / "Logs" / "simclip" / "server.log"
    if platform == "win32":
        base = os.environ.get("LOCALAPPDATA") or Path.home() / "AppData" / "Local"
        return Path(base) / "simclip" / "logs" / "server.log"
    base = os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state"
    return Path(base) / "simclip" / "server.log"


def get_service_path(platform=None):
    """Where the service definition goes on this platform (see the module docstring)."""
    platform = platform or get_platform()
    if platform == "darwin":
        return Path.home() / "Library" / "LaunchAgents" / f"{LAUNCHD_LABEL}.plist"
    if platform == "win32":
        base = os.environ.get("APPDATA") or Path.home() / "AppData" / "Roaming"
        return (Path(base) / "Microsoft" / "Windows" / "Start Menu" / "Programs" / "Startup"
                / f"{SERVICE_NAME}.vbs")
    base = os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config"
    return Path(base) / "systemd" / "user" / UNIT_NAME


def server_command(argv, cwd=None):
    """The command the service runs: this Python, `-m backend.serve`, and `argv` without the
    service flags, with relative paths of PATH_OPTIONS made absolute against `cwd`.

    Raises:
        ServiceError: --checkpoint names a file that does not exist.
    """
    cwd = Path(cwd or os.getcwd())
    out, args = [], list(argv)
    i = 0
    while i < len(args):
        arg = args[i]
        i += 1
        if arg in SERVICE_FLAGS:
            continue
        name, eq, value = arg.partition("=")
        if name in PATH_OPTIONS:
            if not eq and i < len(args):
                value, i = args[i], i + 1
            elif not eq:  # argparse has already refused this; keep it as it is
                out.append(arg)
                continue
            out += [name, _absolute(name, value, cwd)]
            continue
        out.append(arg)
    return [sys.executable, "-m", "backend.serve", *out]


def _absolute(option, value, cwd):
    """`value` made absolute when it is (or, for folders and the head, must be) a local path."""
    path = Path(value).expanduser()
    full = path if path.is_absolute() else cwd / path
    if option == "--checkpoint" and not full.is_file():
        raise ServiceError(f"--checkpoint {value}: no such file ({full})")
    if option in ("--cache-dir", "--weights-cache-dir", "--config-dir") or full.exists():
        return str(full)
    return value  # a weights tag ('openai'), an architecture name, or 'none'


def get_environment():
    """The PASSED_ENV variables set now, for the service."""
    return {k: os.environ[k] for k in PASSED_ENV if os.environ.get(k)}


# ---------------------------------------------------------------- service definitions

def _systemd_escape(text):
    """`text` as systemd reads it back: '%' specifiers and '$' expansion escaped."""
    return text.replace("%", "%%").replace("$", "$$")


def _systemd_quote(arg):
    """One ExecStart argument: as is when plain, else double-quoted with C escapes."""
    arg = _systemd_escape(arg)
    if arg and not any(c in arg for c in " \t\n\"'\\;"):
        return arg
    return '"' + arg.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def systemd_unit(command, cwd, log_path, env=None):
    """The text of the systemd user unit running `command` (a list) in `cwd`."""
    burst, interval = START_LIMIT
    lines = [
        "# Written by `simclip-server --install-service`; `simclip-server --uninstall-service`",
        "# removes it. Log: " + str(log_path),
        "[Unit]",
        "Description=simclip-server: the meme shield's local classification server",
        f"StartLimitIntervalSec={interval}",
        f"StartLimitBurst={burst}",
        "",
        "[Service]",
        "Type=simple",
        "ExecStart=" + " ".join(_systemd_quote(a) for a in command),
        "WorkingDirectory=" + _systemd_escape(str(cwd)),
    ]
    lines += [f"Environment={_systemd_quote(f'{k}={v}')}" for k, v in sorted((env or {}).items())]
    lines += [
        "Restart=on-failure",
        "RestartSec=5",
        "StandardOutput=append:" + _systemd_escape(str(log_path)),
        "StandardError=append:" + _systemd_escape(str(log_path)),
        "",
        "[Install]",
        "WantedBy=default.target",
        "",
    ]
    return "\n".join(lines)


def launchd_plist(command, cwd, log_path, env=None):
    """The LaunchAgent plist (bytes) running `command` at login, restarted after a failure."""
    plist = {
        "Label": LAUNCHD_LABEL,
        "ProgramArguments": list(command),
        "WorkingDirectory": str(cwd),
        "RunAtLoad": True,
        "KeepAlive": {"SuccessfulExit": False},  # restart only when it exits with an error
        "ThrottleInterval": 10,
        "StandardOutPath": str(log_path),
        "StandardErrorPath": str(log_path),
    }
    if env:
        plist["EnvironmentVariables"] = dict(env)
    return plistlib.dumps(plist)


def _cmd_quote(arg):
    """One argument of a .cmd line, always double-quoted ('%' doubled for batch files)."""
    if '"' in arg:
        raise ServiceError(f"cannot pass an argument with a double quote to a Windows batch file: "
                           f"{arg!r}")
    return '"' + arg.replace("%", "%%") + '"'


def windows_scripts(command, cwd, log_path, cmd_path, env=None):
    """(the .cmd that runs the server, the .vbs for the Startup folder that runs it hidden)."""
    lines = ["@echo off", "rem Written by simclip-server --install-service; "
             "simclip-server --uninstall-service removes it.",
             f"cd /d {_cmd_quote(str(cwd))}"]
    lines += [f'set "{k}={v.replace("%", "%%")}"' for k, v in sorted((env or {}).items())]
    lines.append(" ".join(_cmd_quote(a) for a in command) + f" >> {_cmd_quote(str(log_path))} 2>&1")
    cmd = "\r\n".join(lines) + "\r\n"
    quoted = str(cmd_path).replace('"', '""')
    vbs = ("' Written by simclip-server --install-service: starts simclip-server at login, "
           "without a console window.\r\n"
           f'CreateObject("WScript.Shell").Run """{quoted}""", 0, False\r\n')
    return cmd, vbs


# ---------------------------------------------------------------- running the tools

def _run(command):
    """(exit status, output) of a service-manager command; 127 when it is not installed."""
    if shutil.which(command[0]) is None:
        return 127, f"{command[0]}: not found"
    try:
        proc = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
    except (OSError, subprocess.TimeoutExpired) as e:
        return 1, str(e)
    return proc.returncode, (proc.stdout + proc.stderr).strip()


def systemd_user_available():
    """True when `systemctl --user` reaches a user service manager (not in most containers)."""
    return _run(["systemctl", "--user", "show-environment"])[0] == 0


def _write(path, data):
    """Write `data` (str or bytes) to `path` if it differs; True when it changed the file."""
    data = data.encode() if isinstance(data, str) else data
    if path.is_file() and path.read_bytes() == data:
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    tmp.replace(path)
    return True


def _must(commands, command):
    """Run `command`, record it; raise ServiceError with its output when it fails."""
    commands.append(command)
    rc, out = _run(command)
    if rc != 0:
        raise ServiceError(f"`{' '.join(command)}` failed ({rc}): {out}")


# ---------------------------------------------------------------- install / uninstall

def install(argv, cwd=None):
    """Install (or update) the login service running simclip-server with `argv`; start it.

    Args:
        argv: simclip-server's arguments; the service flags are dropped.
        cwd: the folder relative paths are resolved against and the service runs in.

    Returns:
        A Result. Raises ServiceError when the service manager refuses.
    """
    platform = get_platform()
    cwd = Path(cwd or os.getcwd()).resolve()
    command = server_command(argv, cwd)
    log_path = get_log_path(platform)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    path, env, commands, messages = get_service_path(platform), get_environment(), [], []
    if platform == "linux":
        changed = _write(path, systemd_unit(command, cwd, log_path, env))
        if systemd_user_available():
            _must(commands, ["systemctl", "--user", "daemon-reload"])
            _must(commands, ["systemctl", "--user", "enable", "--now", UNIT_NAME])
            if changed:  # a running server keeps its old options until restarted
                _must(commands, ["systemctl", "--user", "restart", UNIT_NAME])
            messages.append(f"started; it starts at every login. Status: systemctl --user status "
                            f"{SERVICE_NAME}")
        else:
            messages.append("`systemctl --user` has no user service manager to talk to here "
                            "(no systemd login session). Enable it from a login session with: "
                            f"systemctl --user daemon-reload && systemctl --user enable --now "
                            f"{UNIT_NAME}")
    elif platform == "darwin":
        changed = _write(path, launchd_plist(command, cwd, log_path, env))
        domain = f"gui/{os.getuid()}"
        loaded = _run(["launchctl", "print", f"{domain}/{LAUNCHD_LABEL}"])[0] == 0
        if loaded and changed:
            _must(commands, ["launchctl", "bootout", f"{domain}/{LAUNCHD_LABEL}"])
        if changed or not loaded:
            _must(commands, ["launchctl", "bootstrap", domain, str(path)])
        messages.append(f"started; it starts at every login. Status: launchctl print "
                        f"{domain}/{LAUNCHD_LABEL}")
    else:
        cmd_path = log_path.parent.parent / f"{SERVICE_NAME}.cmd"
        cmd, vbs = windows_scripts(command, cwd, log_path, cmd_path, env)
        changed = _write(cmd_path, cmd) | _write(path, vbs)
        messages.append(f"it starts at your next login (to start it now, run {path})")
    if not changed:
        messages.insert(0, f"already installed with these options: {path}")
    messages.append(f"log: {log_path}")
    return Result(path, changed, commands, messages)


def uninstall():
    """Stop and remove the login service; a Result whose `changed` is False when none was there."""
    platform = get_platform()
    path, commands, messages = get_service_path(platform), [], []
    extra = [get_log_path(platform).parent.parent / f"{SERVICE_NAME}.cmd"] if platform == "win32" else []
    if not path.exists():
        for p in extra:
            p.unlink(missing_ok=True)
        return Result(path, False, commands, [f"no simclip-server service is installed "
                                              f"(nothing at {path})"])
    if platform == "linux":
        if systemd_user_available():
            _must(commands, ["systemctl", "--user", "disable", "--now", UNIT_NAME])
        path.unlink()
        if systemd_user_available():
            _must(commands, ["systemctl", "--user", "daemon-reload"])
    elif platform == "darwin":
        domain = f"gui/{os.getuid()}"
        if _run(["launchctl", "print", f"{domain}/{LAUNCHD_LABEL}"])[0] == 0:
            _must(commands, ["launchctl", "bootout", f"{domain}/{LAUNCHD_LABEL}"])
        path.unlink()
    else:
        path.unlink()
        for p in extra:
            p.unlink(missing_ok=True)
        messages.append("a server started at this login keeps running until you log out")
    messages.insert(0, f"removed {path}; simclip-server no longer starts at login")
    return Result(path, True, commands, messages)


def main(args, argv):
    """`simclip-server --install-service|--uninstall-service`: returns the exit status."""
    try:
        result = uninstall() if args.uninstall_service else install(argv)
    except (ServiceError, OSError) as e:
        print(f"simclip-server: {e}", file=sys.stderr)
        return 1
    if not args.uninstall_service and result.changed:
        print(f"simclip-server: installed the login service {result.path}")
    for line in result.messages:
        print(f"simclip-server: {line}")
    return 0
