"""Backbone loading through open_clip: tiny random weights, local files and dirs, offline failures."""

import json
import os
import subprocess
import sys
import time

import open_clip
import pytest
import torch

from simclip import (
    BackboneUnavailableError,
    CheckpointError,
    HeadConfig,
    SimCLIPHead,
    TaskSpec,
    load_backbone,
    load_classifier,
    make_metadata,
    save_checkpoint,
)
from simclip.backbone import get_device


@pytest.fixture(scope="module")
def tiny_weights(tmp_path_factory):
    """A local open_clip checkpoint file of the tiny architecture with non-default weights."""
    torch.manual_seed(123)
    model = open_clip.create_model("simclip-tiny")
    path = tmp_path_factory.mktemp("weights") / "tiny.pt"
    torch.save(model.state_dict(), path)
    return path


def test_tiny_backbone_is_frozen_in_eval_mode_and_normalizes(tiny_backbone):
    assert not any(p.requires_grad for p in tiny_backbone.model.parameters())
    assert not tiny_backbone.model.training
    from PIL import Image

    e = tiny_backbone.encode_images([Image.new("RGB", (50, 40), (9, 9, 9))])
    t = tiny_backbone.encode_texts(["a caption", ""])
    assert e.shape == (1, 64) and t.shape == (2, 64)
    torch.testing.assert_close(t.norm(dim=-1), torch.ones(2))


def test_random_tiny_weights_are_identical_across_processes(tiny_backbone):
    code = ("import os; os.environ['HF_HUB_OFFLINE']='1'; from simclip import load_backbone;"
            "print(load_backbone('simclip-tiny','none',device='cpu',precision='fp32').encode_texts(['x'])[0,:4].tolist())")
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    torch.testing.assert_close(torch.tensor(json.loads(out.stdout)),
                               tiny_backbone.encode_texts(["x"])[0, :4])


def test_local_weights_file_is_loaded_and_identified(tiny_weights, tiny_backbone):
    bb = load_backbone("simclip-tiny", str(tiny_weights), device="cpu")
    assert bb.info.pretrained.startswith("file:")
    assert not torch.allclose(bb.encode_texts(["x"]), tiny_backbone.encode_texts(["x"]))


def test_local_model_directory_is_loaded(tmp_path, tiny_weights):
    cfg = open_clip.get_model_config("simclip-tiny")
    (tmp_path / "open_clip_config.json").write_text(json.dumps(
        {"model_cfg": cfg, "preprocess_cfg": {}}))
    model = open_clip.create_model("simclip-tiny", pretrained=str(tiny_weights))
    torch.save(model.state_dict(), tmp_path / "open_clip_pytorch_model.bin")
    bb = load_backbone(str(tmp_path), device="cpu")
    ref = load_backbone("simclip-tiny", str(tiny_weights), device="cpu")
    assert bb.info.pretrained == "local-dir"
    torch.testing.assert_close(bb.encode_texts(["hello"]), ref.encode_texts(["hello"]))


def test_missing_weights_fail_at_once_with_what_to_do_when_offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    t0 = time.monotonic()
    with pytest.raises(BackboneUnavailableError, match="not cached.*--pretrained PATH"):
        load_backbone("ViT-L-14-336", "openai", device="cpu")
    assert time.monotonic() - t0 < 5


def test_unreachable_hub_fails_at_once_even_without_offline_flag(monkeypatch):
    import simclip.backbone as backbone

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(backbone, "_can_reach", lambda host, **kw: False)
    with pytest.raises(BackboneUnavailableError, match="cannot be reached"):
        load_backbone("ViT-L-14-336", "openai", device="cpu")


def test_unknown_architecture_error_lists_the_options():
    with pytest.raises(ValueError, match="Available: .*simclip-tiny"):
        load_backbone("ViT-Nope", "none")


def test_unknown_pretrained_tag_lists_known_tags():
    with pytest.raises(BackboneUnavailableError, match="Known tags: .*openai"):
        load_backbone("ViT-L-14-336", "nonexistent-tag")


def test_device_is_chosen_automatically():
    assert get_device("cpu").type == "cpu"
    expected = "cuda" if torch.cuda.is_available() else (
        "mps" if torch.backends.mps.is_available() else "cpu")
    assert get_device(None).type == expected


def test_head_trained_on_another_backbone_is_refused_by_the_classifier(tmp_path, tiny_weights):
    head = SimCLIPHead(HeadConfig(embed_dim=64, tasks=[TaskSpec("h", "multiclass", ["no", "yes"])]))
    meta = make_metadata(head.config, load_backbone("simclip-tiny", "none").info,
                         [{"category": "harmful", "task": "h", "labels": ["yes"], "threshold": 0.5}])
    path = save_checkpoint(tmp_path / "h.safetensors", head, meta)
    with pytest.raises(CheckpointError, match="trained on backbone simclip-tiny/random"):
        load_classifier(path, pretrained=str(tiny_weights), device="cpu", ocr="none")


def test_importing_simclip_loads_no_server_code():
    code = "import sys, simclip; assert not {'flask', 'waitress', 'backend'} & set(sys.modules)"
    subprocess.run([sys.executable, "-c", code], check=True, env={**os.environ})


def test_importing_simclip_defers_torch_until_a_model_name_is_used():
    code = ("import sys, simclip; assert simclip.DEFAULT_PORT and 'torch' not in sys.modules;"
            "simclip.HeadConfig; assert 'torch' in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True, env={**os.environ})
