"""`simclip datasets fetch` and `simclip quickstart` against a local fixture HTTP server."""

import contextlib
import http.server
import json
import shutil
from functools import partial
from typing import ClassVar

import pytest
from http_fakes import FakeResponse, serve_loopback

from simclip import cli, read_metadata
from simclip_train import download
from simclip_train.synthetic import make_synthetic_dataset
from tiny import TINY


class RangeHandler(http.server.SimpleHTTPRequestHandler):
    """Static files with HTTP Range support (as raw.githubusercontent.com has); logs requests."""

    requests: ClassVar[list] = []

    def log_message(self, *args):
        pass

    def do_GET(self):
        RangeHandler.requests.append((self.path, self.headers.get("Range")))
        path = self.translate_path(self.path)
        try:
            with open(path, "rb") as f:
                data = f.read()
        except OSError:
            self.send_error(404)
            return
        start = 0
        if self.headers.get("Range", "").startswith("bytes="):
            start = int(self.headers["Range"][6:].split("-")[0])
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        else:
            self.send_response(200)
        self.send_header("Content-Length", str(len(data) - start))
        self.end_headers()
        self.wfile.write(data[start:])


def make_mirror(root):
    """Write a Harm-C-shaped mirror (annotations/ + images/) of synthetic memes under `root`."""
    src = make_synthetic_dataset(root / "src", n_train=24, n_val=12, n_test=6, seed=3,
                                 size=(160, 120))
    (root / "annotations").mkdir()
    for split in ("train", "val", "test"):
        shutil.copy(src / f"{split}.jsonl", root / "annotations" / f"{split}.jsonl")
    shutil.copytree(src / "images", root / "images")
    return root


@contextlib.contextmanager
def serving(root):
    """`root` over HTTP on 127.0.0.1 (with Range support); yields the base URL."""
    with serve_loopback(partial(RangeHandler, directory=str(root))) as url:
        yield url + "/"


@pytest.fixture(scope="module")
def mirror(tmp_path_factory):
    """A Harm-C-shaped mirror of synthetic memes on 127.0.0.1: (root, base URL)."""
    root = make_mirror(tmp_path_factory.mktemp("mirror"))
    with serving(root) as url:
        yield root, url


def test_fetch_lays_out_harm_c_atomically_with_a_checked_manifest(tmp_path, mirror, capsys):
    root, url = mirror
    assert cli.main(["datasets", "fetch", "harmeme-c", "--data-dir", str(tmp_path),
                     "--base-url", url]) == 0
    out = tmp_path / "harmeme-c"
    assert not (tmp_path / "harmeme-c.partial").exists()
    assert sorted(p.name for p in out.iterdir()) == ["MANIFEST.json", "images", "test.jsonl",
                                                    "train.jsonl", "val.jsonl"]
    manifest = json.loads((out / "MANIFEST.json").read_text())
    name = min((root / "images").iterdir()).name
    assert manifest["files"][f"images/{name}"]["sha256"] == download.sha256_file(
        root / "images" / name)
    assert manifest["files"]["train.jsonl"]["memes"] == 24
    assert "harmeme-c ready" in capsys.readouterr().out
    assert manifest["truncated_images"] == []


def test_fetch_keeps_an_image_truncated_at_the_source_and_lists_it_in_the_manifest(tmp_path):
    root = make_mirror(tmp_path / "mirror")
    name = min((root / "images").iterdir()).name
    image = root / "images" / name
    image.write_bytes(image.read_bytes()[: image.stat().st_size // 2])
    with serving(root) as url:
        out = download.fetch_harmeme_c(tmp_path / "data", base_url=url, progress=False)
    manifest = json.loads((out / "MANIFEST.json").read_text())
    assert manifest["truncated_images"] == [name]
    assert f"images/{name}" in manifest["files"]


def test_fetch_resumes_a_partial_file_with_a_range_request(tmp_path, mirror):
    root, url = mirror
    name = sorted((root / "images").iterdir())[1].name
    data = (root / "images" / name).read_bytes()
    part = tmp_path / "harmeme-c.partial" / "images" / f"{name}.part"
    part.parent.mkdir(parents=True)
    part.write_bytes(data[: len(data) // 2])
    RangeHandler.requests.clear()
    download.fetch_harmeme_c(tmp_path, base_url=url, progress=False)
    assert (f"/images/{name}", f"bytes={len(data) // 2}-") in RangeHandler.requests
    assert (tmp_path / "harmeme-c" / "images" / name).read_bytes() == data


def test_fetch_base_url_comes_from_the_environment_and_a_complete_dataset_is_not_refetched(
        tmp_path, mirror, monkeypatch):
    _, url = mirror
    monkeypatch.setenv(download.BASE_URL_ENV, url)
    download.fetch_harmeme_c(tmp_path, progress=False)
    RangeHandler.requests.clear()
    download.fetch_harmeme_c(tmp_path, progress=False)
    assert RangeHandler.requests == []


def test_download_refuses_a_file_shorter_than_announced(tmp_path, monkeypatch):
    short = FakeResponse([b"abc"], {"Content-Length": "10"})
    monkeypatch.setattr(download.urllib.request, "urlopen", lambda *a, **k: short)
    with pytest.raises(download.DownloadError, match="got 3 bytes, the server announced 10"):
        download.download("http://127.0.0.1/x", tmp_path / "x")
    assert not (tmp_path / "x").exists() and (tmp_path / "x.part").is_file()


@pytest.mark.parametrize("name,where", [("mami", "MIND-Lab"), ("hateful-memes", "hatefulmemes"),
                                        ("memotion", "memotion-dataset-7k"),
                                        ("multioff", "bharathichezhiyan"),
                                        ("harmeme-p", "LCS2-IIITD/MOMENTA")])
def test_gated_dataset_fetch_says_where_to_request_it_and_the_layout(tmp_path, capsys, name,
                                                                     where):
    assert cli.main(["datasets", "fetch", name, "--data-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert where in err and "Layout:" in err


def test_quickstart_fetches_trains_and_prints_a_server_line_whose_checkpoint_predicts(
        tmp_path, mirror, capsys, monkeypatch):
    _, url = mirror
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    assert cli.main(["quickstart", "--data-dir", str(tmp_path), "--base-url", url, *TINY,
                     "--epochs", "3", "--augment", "8"]) == 0
    out = capsys.readouterr().out.strip().splitlines()[-1]
    ckpt = tmp_path / "checkpoints" / "harmeme-c-binary.safetensors"
    assert out.startswith(f"simclip-server --checkpoint {ckpt}")
    training = read_metadata(ckpt)["training"]
    assert training["text"] == "dataset" and training["threshold_text"].startswith("ocr-")
    assert (training["augment"], training["augment_recipe"]) == (
        8, "torchvision.RandAugment(num_ops=6, magnitude=9)")
    image = min((tmp_path / "harmeme-c" / "images").iterdir())
    assert cli.main(["predict", str(image), "--checkpoint", str(ckpt), "--ocr", "none",
                     "--pretrained", "none"]) == 0
    result = json.loads(capsys.readouterr().out)[0]
    assert result["mode"] == "trained" and "harmful" in result["scores"]
    # issue 9: quickstart also calibrates the zero-shot scores, on the validation memes' OCR text
    calibration = json.loads((tmp_path / "cache" / "simclip" / "calibration" /
                              "simclip-tiny__random.json").read_text())
    assert calibration["data"]["split"] == "val" and calibration["data"]["text"].startswith("ocr-")
    assert cli.main(["predict", str(image), "--ocr", "none", *TINY]) == 0
    result = json.loads(capsys.readouterr().out)[0]
    assert result["mode"] == "zero-shot" and not result["calibrated"]  # only 'harmful' is fitted
