"""Errors on the way to a trained head say what failed and what to do: an unreachable download
server (offline quickstart), a dataset missing from --data-dir (found before any backbone is
built, with the fetch command)."""

import os
import shlex
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from http_fakes import FakeResponse

import simclip.backbone
import simclip_train.embed
from simclip import cli
from simclip_train import download
from simclip_train.datasets import DatasetNotFoundError, check_dataset
from tiny import TINY


@pytest.fixture
def closed_port():
    """A local port nothing listens on: connecting to it is refused at once."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def no_backbone(monkeypatch):
    """Building a backbone fails the test: the error had to come before it."""
    def refuse(*args, **kwargs):
        raise AssertionError("load_backbone was called before the dataset was checked")

    for module in (simclip.backbone, simclip_train.embed, simclip):
        monkeypatch.setattr(module, "load_backbone", refuse, raising=False)


def test_offline_quickstart_prints_what_failed_and_the_three_fixes_without_a_traceback(
        tmp_path, closed_port):
    env = {k: v for k, v in os.environ.items() if k != download.BASE_URL_ENV}
    data = tmp_path / "my data"
    proc = subprocess.run(
        [str(Path(sys.executable).parent / "simclip"), "quickstart", "--data-dir", str(data),
         "--base-url", f"http://127.0.0.1:{closed_port}/", *TINY],
        env=env, capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 1, proc.stderr
    err = proc.stderr
    assert "Traceback" not in err
    assert f"simclip quickstart: cannot download Harm-C: cannot reach 127.0.0.1:{closed_port}" in err
    assert "Connection refused" in err
    assert "connect to the internet and run the same command again" in err
    assert "--base-url URL" in err and download.BASE_URL_ENV in err
    assert f"put in {shlex.quote(str(data))}/harmeme-c/" in err  # by hand, to the right folder
    assert "https://github.com/di-dimitrov/mmf" in err


def test_datasets_fetch_offline_gives_the_same_advice(tmp_path, closed_port, capsys):
    rc = cli.main(["datasets", "fetch", "harmeme-c", "--data-dir", str(tmp_path),
                   "--base-url", f"http://127.0.0.1:{closed_port}"])
    err = capsys.readouterr().err
    assert rc == 1
    assert f"cannot download Harm-C: cannot reach 127.0.0.1:{closed_port}" in err
    assert "fetch it by hand" in err


def test_offline_fetch_uses_a_copy_laid_by_hand(tmp_path, closed_port, caplog):
    root = tmp_path / "harmeme-c"
    root.mkdir()
    for split in ("train", "val", "test"):
        (root / f"{split}.jsonl").write_text("")
    assert download.fetch_harmeme_c(tmp_path, base_url=f"http://127.0.0.1:{closed_port}/",
                                    progress=False) == root
    assert "using the copy in" in caplog.text and "not checked" in caplog.text


def test_a_connection_cut_mid_file_says_to_run_again_to_resume(tmp_path, monkeypatch):
    def cut(*args, **kwargs):  # every try: 4 bytes, then the connection resets
        return FakeResponse([b"abcd"], {"Content-Length": "10"},
                            error=ConnectionResetError(104, "Connection reset by peer"))

    monkeypatch.setattr(download.urllib.request, "urlopen", cut)
    with pytest.raises(download.DownloadError, match="broke after 4 bytes .*run the command "
                                                      "again to resume") as e:
        download.download("http://mirror.test/f", tmp_path / "f", backoff_s=0)
    assert e.value.unreachable
    assert (tmp_path / "f.part").read_bytes() == b"abcd"  # kept for the resume


def empty_split_files(root):
    root.mkdir(parents=True)
    for split in ("train", "val", "test"):
        (root / f"{split}.jsonl").write_text("")


@pytest.mark.parametrize("command", [
    ["train", "--dataset", "harmeme-c", "--out", "{tmp}/head.safetensors"],
    ["embed", "harmeme-c"],
    ["calibrate", "--dataset", "harmeme-c"],
    ["evaluate", "zero-shot", "harmeme-c", "--split", "test"],
    ["evaluate", "{tmp}/head.safetensors", "harmeme-c", "--split", "test"],
])
def test_a_missing_dataset_fails_before_the_backbone_naming_the_path_and_the_fetch_command(
        tmp_path, capsys, no_backbone, command):
    empty = tmp_path / "empty dir"
    empty.mkdir()
    argv = [a.format(tmp=tmp_path) for a in command] + ["--data-dir", str(empty)]
    rc = cli.main(argv)  # the default backbone and weights: the path a user takes
    err = capsys.readouterr().err
    assert rc != 0, err
    split = "test" if "test" in command else "train" if "calibrate" not in command else "val"
    assert f"dataset harmeme-c not found: no {empty / 'harmeme-c' / (split + '.jsonl')}" in err
    assert f"simclip datasets fetch harmeme-c --data-dir {shlex.quote(str(empty))}" in err


def test_multi_dataset_training_checks_every_dataset_before_embedding_the_first(
        tmp_path, capsys, no_backbone):
    empty_split_files(tmp_path / "harmeme-c")
    rc = cli.main(["train", "--dataset", "harmeme-c", "--dataset", "mami:a", "--data-dir",
                   str(tmp_path), "--out", str(tmp_path / "h.safetensors")])
    err = capsys.readouterr().err
    assert rc == 2
    assert f"dataset mami not found: no {tmp_path / 'mami' / 'training.csv'}" in err
    assert "`simclip datasets info mami` says where to request it" in err


def test_check_dataset_names_the_missing_file_of_a_flat_layout_where_it_is_looked_for(tmp_path):
    (tmp_path / "train.jsonl").write_text("")  # the files straight in DATA_DIR
    with pytest.raises(DatasetNotFoundError, match=f"no {tmp_path / 'val.jsonl'};"):
        check_dataset(tmp_path, "harmeme-c")
    (tmp_path / "val.jsonl").write_text("")
    check_dataset(tmp_path, "harmeme-c", ("train", "val"))  # complete for these splits
    assert isinstance(DatasetNotFoundError("x"), ValueError)  # caught where format errors are

