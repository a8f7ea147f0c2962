"""The `simclip-server` command as a user runs it: a real process on a free loopback port."""

import io
import stat

import requests
from PIL import Image

from backend.serve import main


def test_server_logs_one_line_naming_model_mode_and_device(server_process):
    lines = [line for line in server_process.log().splitlines() if "serving " in line]
    assert len(lines) == 1
    assert "simclip-tiny/random" in lines[0] and "zero-shot mode" in lines[0]
    assert "device cpu" in lines[0]


def test_server_creates_a_private_token_and_requires_it(server_process):
    token_file = server_process.config_dir / "token"
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    assert requests.get(server_process.url + "/v1/health", timeout=10).status_code == 401
    r = requests.get(server_process.url + "/v1/health", headers=server_process.headers, timeout=10)
    assert r.status_code == 200
    assert r.json()["model"] == "simclip-tiny/random"


def test_server_classifies_an_image_and_never_logs_the_token(server_process):
    buf = io.BytesIO()
    Image.new("RGB", (64, 64), (9, 99, 199)).save(buf, "PNG")
    r = requests.post(server_process.url + "/v1/classify", data=buf.getvalue(), timeout=30,
                      headers={**server_process.headers, "Content-Type": "image/png"})
    assert r.status_code == 200
    assert server_process.token not in server_process.log()
    assert "Server" not in r.headers


def test_print_token_prints_the_same_token(server_process, capsys):
    assert main(["--print-token", "--config-dir", str(server_process.config_dir)]) == 0
    assert capsys.readouterr().out.strip() == server_process.token


def test_server_refuses_a_busy_port_before_loading_the_model(server_process, capsys):
    assert main(["--model", "no-such-model", "--port", str(server_process.port)]) == 2
    assert "cannot listen" in capsys.readouterr().err
