"""install.sh: the torch build it picks (CUDA with an NVIDIA driver, the CPU index on Linux
without one, PyPI's on macOS), its overrides, that it never calls sudo, and one real run into a
temporary environment.

The choice is tested in --dry-run (the commands it prints); `nvidia-smi`, `uname` and `sudo` are
fake scripts on PATH. The real run takes torch from the test's own environment through PYTHONPATH:
installing torch 2.14.1 from this machine's local wheels is not possible (its cuda-bindings
dependency is not there) and PyTorch's index is not reachable, so that one step is `pip`'s
"already satisfied".
"""

import http.server
import json
import os
import shlex
import shutil
import site
import subprocess
import sys
from pathlib import Path

import pytest
from http_fakes import serve_loopback

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "install.sh"
CPU_INDEX = "https://download.pytorch.org/whl/cpu"
# the tools install.sh uses; a PATH made of these alone has no nvidia-smi and no sudo
TOOLS = ("bash", "uname", "dirname", "mktemp", "ls", "rm", "cat", "env")


def make_bin(tmp_path, fakes=None, with_system_path=True):
    """A folder of fake commands ({name: bash body}) first on PATH; returns the environment."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    for name, body in (fakes or {}).items():
        f = bin_dir / name
        f.write_text(f"#!/bin/bash\n{body}\n")
        f.chmod(0o755)
    if not with_system_path:
        for tool in TOOLS:
            if not (bin_dir / tool).exists():
                (bin_dir / tool).symlink_to(shutil.which(tool))
    env = {k: v for k, v in os.environ.items() if not k.startswith("SIMCLIP_")}
    env["PATH"] = str(bin_dir) + (os.pathsep + os.environ["PATH"] if with_system_path else "")
    env["SIMCLIP_NVIDIA_PROC"] = str(tmp_path / "no-driver")  # the host's own driver is not seen
    return env


def recorder(log):
    """Body of a fake command that appends its name and argv to `log` and exits 0."""
    return f'echo "$(basename "$0") $*" >> {log}'


def install(env, *args, timeout=60):
    return subprocess.run(["bash", str(SCRIPT), "--python", sys.executable, *args], env=env,
                          capture_output=True, text=True, timeout=timeout, check=False)


def torch_command(proc):
    """The `pip install` line of torch that a dry run printed."""
    lines = [line for line in proc.stderr.splitlines() if line.startswith("+ ") and "torch" in line
             and "pip install" in line]
    assert len(lines) == 1, proc.stderr
    return lines[0]


def dry_run(env, *args):
    proc = install(env, "--dry-run", "--venv", "/nonexistent/venv", *args)
    assert proc.returncode == 0, proc.stderr
    return proc


def test_an_nvidia_driver_gets_the_cuda_build_from_pypi(tmp_path):
    env = make_bin(tmp_path, {"nvidia-smi": "echo 'GPU 0: NVIDIA H200 (UUID: GPU-1)'", "uname": "echo Linux"})
    proc = dry_run(env)
    assert "cuda build (an NVIDIA driver is present)" in proc.stderr
    line = torch_command(proc)
    assert "--index-url" not in line and line.endswith("torch torchvision")


def test_the_driver_proc_entry_alone_also_counts_as_an_nvidia_gpu(tmp_path):
    env = make_bin(tmp_path, {"uname": "echo Linux"}, with_system_path=False)
    proc_dir = tmp_path / "driver"
    proc_dir.mkdir()
    (proc_dir / "version").write_text("NVRM version: NVIDIA UNIX x86_64 Kernel Module  580.1\n")
    env["SIMCLIP_NVIDIA_PROC"] = str(proc_dir)
    assert "--index-url" not in torch_command(dry_run(env))


def test_linux_without_nvidia_smi_gets_the_cpu_index(tmp_path):
    env = make_bin(tmp_path, {"uname": "echo Linux"}, with_system_path=False)
    proc = dry_run(env)
    assert "cpu build (no NVIDIA driver" in proc.stderr
    assert f"--index-url {CPU_INDEX} torch torchvision" in torch_command(proc)


def test_an_nvidia_smi_that_finds_no_driver_gets_the_cpu_index(tmp_path):
    env = make_bin(tmp_path, {"nvidia-smi": "echo 'NVIDIA-SMI has failed' >&2; exit 9",
                              "uname": "echo Linux"})
    assert f"--index-url {CPU_INDEX}" in torch_command(dry_run(env))


def test_cpu_flag_gets_the_cpu_index_even_with_a_gpu(tmp_path):
    env = make_bin(tmp_path, {"nvidia-smi": "echo 'GPU 0: NVIDIA H200'", "uname": "echo Linux"})
    proc = dry_run(env, "--cpu")
    assert "cpu build (asked for with --cpu)" in proc.stderr
    assert f"--index-url {CPU_INDEX}" in torch_command(proc)


def test_cuda_flag_gets_pypi_without_a_gpu(tmp_path):
    env = make_bin(tmp_path, {"uname": "echo Linux"}, with_system_path=False)
    assert "--index-url" not in torch_command(dry_run(env, "--cuda"))


def test_macos_gets_pypi_wheels(tmp_path):
    env = make_bin(tmp_path, {"uname": "echo Darwin"}, with_system_path=False)
    proc = dry_run(env)
    assert "default build (Darwin" in proc.stderr
    assert "--index-url" not in torch_command(proc)


def test_torch_spec_and_index_url_are_overridable_by_flag_and_environment(tmp_path):
    env = make_bin(tmp_path, {"uname": "echo Linux"}, with_system_path=False)
    line = torch_command(dry_run(env, "--torch", "torch==2.14.1 torchvision==0.29.1",
                                 "--index-url", "file:///opt/wheels"))
    assert line.endswith("--index-url file:///opt/wheels torch==2.14.1 torchvision==0.29.1")
    env["SIMCLIP_TORCH_SPEC"] = "torch==2.14.1 torchvision==0.29.1"
    env["SIMCLIP_TORCH_INDEX_URL"] = "https://mirror.example/whl"
    line = torch_command(dry_run(env))
    assert line.endswith("--index-url https://mirror.example/whl torch==2.14.1 torchvision==0.29.1")


def test_dry_run_prints_the_venv_and_editable_install_and_creates_nothing(tmp_path):
    env = make_bin(tmp_path, {"uname": "echo Linux"}, with_system_path=False)
    venv = tmp_path / "venv"
    proc = install(env, "--dry-run", "--venv", str(venv), "--extras", "server,train")
    assert proc.returncode == 0, proc.stderr
    assert f"+ {sys.executable} -m venv {venv}" in proc.stderr
    editable = [shlex.split(line[2:]) for line in proc.stderr.splitlines()
                if line.startswith("+ ") and " -e " in line]
    assert editable == [[str(venv / "bin" / "python"), "-m", "pip", "install", "-e",
                         f"{REPO}[server,train]"]]
    assert "simclip-server --install-service" in proc.stderr  # the next steps are printed
    assert not venv.exists()


def test_unknown_option_and_too_old_python_fail_with_a_message(tmp_path):
    env = make_bin(tmp_path, {"python3.10": "exit 1"}, with_system_path=False)
    proc = subprocess.run(["bash", str(SCRIPT), "--frobnicate"], env=env, capture_output=True,
                          text=True, timeout=30, check=False)
    assert proc.returncode != 0 and "unknown option: --frobnicate" in proc.stderr
    proc = subprocess.run(["bash", str(SCRIPT), "--python", "python3.10", "--dry-run"], env=env,
                          capture_output=True, text=True, timeout=30, check=False)
    assert proc.returncode == 1 and "is not Python >= 3.11" in proc.stderr
    # no usable python3 at all: says which versions work and how to get one without sudo
    proc = subprocess.run(["bash", str(SCRIPT), "--dry-run"], env=env, capture_output=True,
                          text=True, timeout=30, check=False)
    assert proc.returncode == 1 and "needs Python >= 3.11" in proc.stderr
    assert "uv python install" in proc.stderr


def test_no_sudo_in_a_dry_run(tmp_path):
    log = tmp_path / "calls.log"
    env = make_bin(tmp_path, {"sudo": recorder(log), "apt-get": recorder(log)})
    dry_run(env)
    assert not log.exists()


@pytest.fixture
def pypi_with_pip(tmp_path):
    """A local stand-in for PyPI's JSON API that serves the pip wheel ensurepip bundles."""
    import ensurepip

    wheels = sorted((Path(ensurepip.__file__).parent / "_bundled").glob("pip-*.whl"))
    if not wheels:
        pytest.skip(f"this Python ({sys.version.split()[0]}) bundles no pip wheel to serve")
    wheel = wheels[-1]

    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_GET(self):
            if self.path == "/pypi/pip/json":
                url = f"http://127.0.0.1:{self.server.server_port}/files/{wheel.name}"
                body = json.dumps({"urls": [{"packagetype": "sdist", "url": "x", "filename": "x"},
                                            {"packagetype": "bdist_wheel", "url": url,
                                             "filename": wheel.name}]}).encode()
            elif self.path == f"/files/{wheel.name}":
                body = wheel.read_bytes()
            else:
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    with serve_loopback(Handler) as url:
        yield url


@pytest.mark.slow
def test_real_install_without_ensurepip_then_again_idempotent_and_never_sudo(tmp_path,
                                                                            pypi_with_pip):
    """A Python without ensurepip (Debian without python3-venv): a venv without pip, pip fetched
    from the (local) PyPI, torch "already satisfied" from this environment, simclip editable.
    A second run reuses everything."""
    log = tmp_path / "calls.log"
    no_ensurepip = ('for a in "$@"; do [ "$a" = "import ensurepip" ] && exit 1; done\n'
                    f'exec {sys.executable} "$@"')
    env = make_bin(tmp_path, {"sudo": recorder(log), "apt-get": recorder(log),
                              "python-no-ensurepip": no_ensurepip})
    env["PYTHONPATH"] = os.pathsep.join(site.getsitepackages())  # torch, without downloading it
    env["SIMCLIP_PYPI_URL"] = pypi_with_pip
    venv = tmp_path / "venv"
    spec = "torch torchvision"
    proc = subprocess.run(["bash", str(SCRIPT), "--python", "python-no-ensurepip", "--venv",
                           str(venv), "--torch", spec], env=env, capture_output=True, text=True,
                          timeout=300, check=False, cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "has no ensurepip" in proc.stderr
    assert f"-m venv --without-pip {venv}" in proc.stderr
    assert list((venv / "lib").glob("python3*/site-packages/pip/__init__.py")), "pip not bootstrapped"
    assert (venv / "bin" / "simclip-server").is_file()
    assert "1. start the server:   venv/bin/simclip-server" in proc.stderr
    check = subprocess.run([str(venv / "bin" / "simclip-server"), "--help"], env=env,
                           capture_output=True, text=True, timeout=120, check=False)
    assert check.returncode == 0 and "--install-service" in check.stdout, check.stderr

    again = subprocess.run(["bash", str(SCRIPT), "--python", sys.executable, "--venv", str(venv),
                            "--torch", spec], env=env, capture_output=True, text=True,
                           timeout=300, check=False, cwd=tmp_path)
    assert again.returncode == 0, again.stdout + again.stderr
    assert f"using the existing environment {venv}" in again.stderr
    assert "has no ensurepip" not in again.stderr and "-m venv" not in again.stderr
    assert "torch " in again.stderr and "is already in" in again.stderr
    assert not log.exists(), log.read_text()


@pytest.mark.lint
def test_install_sh_is_shellcheck_clean():
    if shutil.which("shellcheck") is None:
        pytest.skip("shellcheck is not installed (.ci/run installs it: apt-get install shellcheck)")
    proc = subprocess.run(["shellcheck", str(SCRIPT)], capture_output=True, text=True, timeout=60,
                          check=False)
    assert proc.returncode == 0, proc.stdout
