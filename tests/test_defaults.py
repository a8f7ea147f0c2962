"""Issue 15: every command run with its DEFAULT arguments builds the paper's backbone,
ViT-L-14-336 with OpenAI's weights and QuickGELU, never random weights.

The weights cannot be downloaded here, so open_clip's loading is stubbed: the stub records the
architecture, tag and activation each command asks open_clip for, then builds the tiny
random-weight architecture in their place (no download). Everything else runs for real: the
argument parsing, the default resolution, the embedding cache paths, the checkpoint metadata,
the calibration file name, the score rows, the server's options.
"""

import importlib
import json
import subprocess
import sys
from pathlib import Path

import open_clip
import pytest
from test_download import make_mirror, serving

from bench import get_model
from simclip import DEFAULT_MODEL, CheckpointError, backbone, cli, load_backbone, load_classifier, read_metadata
from simclip.backbone import get_backbone_id
from simclip_train.embed import read_cache_metadata
from simclip_train.synthetic import make_synthetic_dataset
from tiny import TINY

PAPER = {"name": "ViT-L-14-336", "pretrained": "openai", "quick_gelu": True}
PAPER_ID = "ViT-L-14-336/openai/quickgelu"


@pytest.fixture
def weights(monkeypatch):
    """open_clip's weight loading stubbed; yields the list of what each build asked for."""
    asked = []
    build = open_clip.create_model_and_transforms
    tokenizer = open_clip.get_tokenizer

    def create_model_and_transforms(name, pretrained=None, cache_dir=None,
                                    force_quick_gelu=False, **kwargs):
        asked.append({"name": name, "pretrained": pretrained, "quick_gelu": force_quick_gelu})
        return build("simclip-tiny", pretrained=None, force_quick_gelu=force_quick_gelu)

    monkeypatch.setattr(backbone, "_check_downloadable", lambda *args: None)  # would download
    monkeypatch.setattr(open_clip, "create_model_and_transforms", create_model_and_transforms)
    monkeypatch.setattr(open_clip, "get_tokenizer", lambda name, **kw: tokenizer("simclip-tiny"))
    return asked


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """A small Harm-C-shaped synthetic dataset: DATA/harmeme-c."""
    root = tmp_path_factory.mktemp("defaults")
    make_synthetic_dataset(root / "harmeme-c", n_train=24, n_val=12, n_test=8, seed=1,
                           size=(160, 120))
    return root


@pytest.fixture(autouse=True)
def user_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))
    return tmp_path / "xdg-cache" / "simclip"


def _meme(data):
    return str(min((data / "harmeme-c" / "images").iterdir()))


def test_the_default_backbone_is_the_papers_without_building_anything():
    assert get_backbone_id() == PAPER_ID
    assert get_backbone_id("ViT-L-14-336") == PAPER_ID
    assert get_backbone_id("ViT-B-32", "laion2b_s34b_b79k") == "ViT-B-32/laion2b_s34b_b79k"


def test_random_weights_only_when_asked_for_by_name():
    with pytest.raises(ValueError, match="has no published weights: pass --pretrained none"):
        load_backbone("simclip-tiny")
    with pytest.raises(ValueError, match="pass --pretrained none"):
        get_backbone_id("simclip-tiny")
    assert get_backbone_id("simclip-tiny", "none") == "simclip-tiny/random"
    tiny = load_backbone("simclip-tiny", "none", device="cpu")
    assert tiny.info.random_weights and tiny.info.id == "simclip-tiny/random"


def test_predict_defaults(weights, data, capsys):
    assert cli.main(["predict", _meme(data), "--ocr", "none"]) == 0
    assert weights == [PAPER]
    err = capsys.readouterr().err
    assert "RANDOM" not in err


def test_embed_train_evaluate_defaults(weights, data, tmp_path, capsys):
    assert cli.main(["embed", "harmeme-c", "--data-dir", str(data)]) == 0
    out, err = capsys.readouterr()
    assert weights == [PAPER]
    assert f"{PAPER_ID}, text=dataset" in out and "RANDOM" not in err
    assert (data / "embeddings" / "harmeme-c" / "ViT-L-14-336_openai_quickgelu").is_dir()

    ckpt = tmp_path / "head.safetensors"
    assert cli.main(["train", "--dataset", "harmeme-c", "--data-dir", str(data),
                     "--out", str(ckpt)]) == 0
    out, err = capsys.readouterr()
    meta = read_metadata(ckpt)
    bb = meta["backbone"]
    assert (bb["model"], bb["pretrained"], bb["activation"], meta["random_weights"]) == (
        "ViT-L-14-336", "openai", "quick_gelu", False)
    assert f"use it: simclip-server --checkpoint {ckpt}\n" in out and "RANDOM" not in err

    assert cli.main(["evaluate", str(ckpt), "harmeme-c", "--data-dir", str(data)]) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["backbone"] == PAPER_ID
    assert all(call == PAPER for call in weights)


def test_calibrate_and_zero_shot_evaluate_defaults(weights, data, user_cache, capsys):
    assert cli.main(["calibrate", "--dataset", "harmeme-c", "--data-dir", str(data),
                     "--ocr", "none"]) == 0
    stored = user_cache / "calibration" / "ViT-L-14-336__openai__quickgelu.json"
    assert json.loads(stored.read_text())["backbone"] == PAPER_ID  # where the server looks
    assert cli.main(["evaluate", "zero-shot", "harmeme-c", "--data-dir", str(data),
                     "--split", "val", "--ocr", "none"]) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["backbone"] == PAPER_ID
    assert weights and all(call == PAPER for call in weights)


def test_quickstart_defaults(weights, tmp_path, user_cache, capsys):
    with serving(make_mirror(tmp_path / "mirror")) as url:
        assert cli.main(["quickstart", "--data-dir", str(tmp_path / "data"), "--base-url", url,
                         "--epochs", "2"]) == 0
    out, err = capsys.readouterr()
    ckpt = tmp_path / "data" / "checkpoints" / "harmeme-c-binary.safetensors"
    assert out.strip().splitlines()[-1] == f"simclip-server --checkpoint {ckpt}"
    meta = read_metadata(ckpt)
    assert meta["backbone"]["pretrained"] == "openai"
    assert meta["training"]["augment"] == 0  # on a CPU: no augmentation views (hours less)
    assert (user_cache / "calibration" / "ViT-L-14-336__openai__quickgelu.json").is_file()
    assert weights and all(call == PAPER for call in weights) and "RANDOM" not in err


def test_score_defaults(weights, data, tmp_path):
    out = tmp_path / "scores.jsonl"
    assert cli.main(["score", _meme(data), "--out", str(out), "--ocr", "none"]) == 0
    row = json.loads(out.read_text().splitlines()[0])
    assert row["model"].startswith(f"{PAPER_ID}|") and row["error"] is None
    assert weights == [PAPER]


def test_server_defaults(weights):
    from backend.serve import parse_args
    from simclip import ClassifierOptions

    options = ClassifierOptions.from_args(parse_args([]))
    assert options.get_backbone_id() == PAPER_ID
    predictor = load_classifier(**options.classifier_kwargs())
    assert weights == [PAPER]
    assert predictor.backbone.info.id == PAPER_ID and not predictor.backbone.info.random_weights


def test_a_head_on_random_weights_says_so_and_is_not_served_unless_asked(data, tmp_path, capsys):
    ckpt = tmp_path / "random.safetensors"
    assert cli.main(["train", "--dataset", "harmeme-c", "--data-dir", str(data), "--epochs", "2",
                     "--out", str(ckpt), *TINY]) == 0
    out, err = capsys.readouterr()
    assert "WARNING: simclip-tiny/random has RANDOM weights" in err
    assert f"simclip-server --checkpoint {ckpt} --model simclip-tiny --pretrained none" in out
    assert read_metadata(ckpt)["random_weights"] is True
    caches = (data / "embeddings" / "harmeme-c" / "simclip-tiny_random").rglob("*.safetensors")
    caches = list(caches)
    assert caches and all(read_cache_metadata(c)["random_weights"] for c in caches)
    with pytest.raises(CheckpointError, match="trained on random weights.*--pretrained none"):
        load_classifier(ckpt, device="cpu", ocr="none")
    served = load_classifier(ckpt, pretrained="none", device="cpu", ocr="none")
    assert served.backbone.info.random_weights


def test_server_budgets_default_to_the_config_and_refuse_zero(capsys):
    from backend.config import DEFAULT_CONFIG
    from backend.serve import parse_args

    args = parse_args([])
    assert (args.decode_budget, args.ocr_budget) == (DEFAULT_CONFIG["DECODE_BUDGET_S"],
                                                    DEFAULT_CONFIG["OCR_BUDGET_S"])
    assert parse_args(["--ocr-budget", "12.5"]).ocr_budget == 12.5
    with pytest.raises(SystemExit):
        parse_args(["--decode-budget", "0"])
    assert "must be > 0" in capsys.readouterr().err


@pytest.mark.parametrize("script", ["bench/bench_server.py", "bench/score_bench.py"])
def test_the_benchmarks_use_random_weights_the_tiny_backbone_on_a_cpu_and_the_papers_on_cuda(script):
    module = importlib.import_module(script.removesuffix(".py").replace("/", "."))
    for device, model in (("cpu", "simclip-tiny"), ("cuda", DEFAULT_MODEL), ("cuda:1", DEFAULT_MODEL)):
        args = module.parse_args(["--device", device])
        assert (get_model(args), args.pretrained) == (model, "none")
    assert get_model(module.parse_args(["--device", "cuda", "--model", "RN50"])) == "RN50"
    # run as docs/bench.md runs it, the script finds the bench package it imports
    repo = Path(__file__).resolve().parents[1]
    out = subprocess.run([sys.executable, script, "--help"], cwd=repo, capture_output=True,
                         text=True, check=True).stdout
    assert f"{DEFAULT_MODEL} on CUDA" in out
