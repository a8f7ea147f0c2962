"""Checkpoint format: round trip, metadata validation, refusal of a mismatching backbone."""

import json

import pytest
import torch
from safetensors.torch import save_file

from simclip import (
    CheckpointError,
    HeadConfig,
    SimCLIPHead,
    TaskSpec,
    load_checkpoint,
    load_classifier,
    make_metadata,
    read_metadata,
    save_checkpoint,
)
from simclip.backbone import BackboneInfo

INFO = BackboneInfo(model="simclip-tiny", pretrained="random", embed_dim=64)
WARNINGS = [{"category": "harmful", "task": "harm", "labels": ["harmful"], "threshold": 0.4}]


def _head(seed=0):
    torch.manual_seed(seed)
    cfg = HeadConfig(embed_dim=64, tasks=[TaskSpec("harm", "multiclass", ["not harmful", "harmful"])])
    return SimCLIPHead(cfg).eval()


def _save(path, head=None, **overrides):
    head = head or _head()
    meta = make_metadata(head.config, INFO, WARNINGS, training={"data": ["synthetic"]},
                         metrics={"val": {"harm": {"macro_f1": 0.9}}})
    meta.update(overrides)
    return save_checkpoint(path, head, meta)


def test_round_trip_gives_identical_outputs(tmp_path):
    head = _head()
    path = _save(tmp_path / "h.safetensors", head)
    loaded, meta = load_checkpoint(path, INFO)
    x, y = torch.randn(5, 64), torch.randn(5, 64)
    torch.testing.assert_close(loaded(x, y)["harm"], head(x, y)["harm"], rtol=0, atol=0)
    assert meta["warnings"] == WARNINGS
    assert meta["backbone"] == {"model": "simclip-tiny", "pretrained": "random", "embed_dim": 64,
                                "activation": "gelu"}  # issue 9: the activation is recorded
    assert meta["random_weights"] is True  # issue 15: and random weights, loudly
    assert meta["training"] == {"data": ["synthetic"]}
    assert meta["format_version"] == 1


def test_head_trained_on_another_backbone_is_refused(tmp_path):
    path = _save(tmp_path / "h.safetensors")
    other = BackboneInfo(model="ViT-L-14-336", pretrained="openai", embed_dim=64)
    with pytest.raises(CheckpointError, match="trained on backbone simclip-tiny/random"):
        load_checkpoint(path, other)


@pytest.mark.parametrize("change, message", [
    ({"format_version": 99}, "format version"),
    ({"warnings": [{"category": "spicy", "task": "harm", "labels": ["harmful"], "threshold": 0.5}]},
     "unknown warning category"),
    ({"warnings": [{"category": "harmful", "task": "nope", "labels": ["harmful"], "threshold": 0.5}]},
     "unknown task"),
    ({"warnings": [{"category": "harmful", "task": "harm", "labels": ["x"], "threshold": 0.5}]},
     "not labels of task"),
    ({"warnings": [{"category": "harmful", "task": "harm", "labels": ["harmful"], "threshold": 2}]},
     "not in \\[0, 1\\]"),
])
def test_invalid_metadata_is_refused_with_a_clear_message(tmp_path, change, message):
    head = _head()
    meta = make_metadata(head.config, INFO, WARNINGS)
    meta.update(change)
    with pytest.raises(CheckpointError, match=message):
        save_checkpoint(tmp_path / "bad.safetensors", head, meta)


def test_weights_that_do_not_fit_the_config_are_refused(tmp_path):
    head = _head()
    meta = make_metadata(head.config, INFO, WARNINGS)
    state = {k: v for k, v in head.state_dict().items() if "projector" not in k}
    save_file(state, str(tmp_path / "h.safetensors"), metadata={"simclip": json.dumps(meta)})
    with pytest.raises(CheckpointError, match="do not match"):
        load_checkpoint(tmp_path / "h.safetensors", INFO)


def test_a_file_that_is_not_a_checkpoint_is_refused(tmp_path):
    (tmp_path / "x.safetensors").write_bytes(b"not a checkpoint at all")
    with pytest.raises(CheckpointError, match="not a readable"):
        read_metadata(tmp_path / "x.safetensors")
    with pytest.raises(CheckpointError, match="does not exist"):
        load_checkpoint(tmp_path / "missing.safetensors")


def test_trained_predictor_reports_checkpoint_categories_and_thresholds(tmp_path):
    path = _save(tmp_path / "h.safetensors")
    p = load_classifier(path, pretrained="none", device="cpu", ocr="none",
                        zero_shot_fallback=False)
    assert p.mode == "trained"
    assert p.list_categories() == [{"id": "harmful", "name": "Harmful",
                                    "description": p.list_categories()[0]["description"],
                                    "default_threshold": 0.4, "calibrated": True,
                                    "source": "trained"}]
    out = p.predict([_png_bytes()])[0]
    assert set(out["scores"]) == {"harmful"}
    assert abs(sum(out["probabilities"]["harm"].values()) - 1.0) < 1e-5
    flagged = out["scores"]["harmful"] >= 0.4
    assert bool(out["warnings"]) == flagged


def test_a_head_keeps_the_other_categories_zero_shot(tmp_path):
    """Issue 15: a head trained on Harm-C gives 'Harmful'; Misogyny, Hateful and Offensive stay
    protected, scored zero-shot (uncalibrated here), and each category says its source."""
    path = _save(tmp_path / "h.safetensors")
    head_only = load_classifier(path, pretrained="none", device="cpu", ocr="none",
                                zero_shot_fallback=False)
    p = load_classifier(path, pretrained="none", device="cpu", ocr="none")
    zero_shot = load_classifier(model="simclip-tiny", pretrained="none", device="cpu", ocr="none")
    sources = {c["id"]: (c["source"], c["calibrated"]) for c in p.list_categories()}
    assert sources == {"harmful": ("trained", True), "misogynous": ("zero-shot", False),
                       "hateful": ("zero-shot", False), "offensive": ("zero-shot", False)}
    assert p.mode == "trained" and not p.calibrated
    data = _png_bytes()
    out, alone, zs = (x.predict([data])[0] for x in (p, head_only, zero_shot))
    assert list(out["scores"]) == ["harmful", "misogynous", "hateful", "offensive"]
    assert out["scores"]["harmful"] == alone["scores"]["harmful"]
    assert all(out["scores"][c] == zs["scores"][c] for c in ("misogynous", "hateful", "offensive"))
    assert out["probabilities"] == alone["probabilities"]
    assert len({p.identity, head_only.identity, zero_shot.identity}) == 3  # result-cache keys


def _png_bytes():
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (80, 60), (200, 30, 30)).save(buf, "PNG")
    return buf.getvalue()


def test_training_time_and_serving_time_warning_scores_are_identical_for_the_same_logits():
    """One rule (simclip.score_warning_rule): the scores training tunes thresholds on are the
    scores the server compares with them, bit for bit, for multiclass and multilabel tasks."""
    from simclip import score_warning_rule, warning_scores
    from simclip_train.train import warning_truth_and_scores

    torch.manual_seed(0)
    tasks = [TaskSpec("level", "multiclass", ["none", "some", "very"]),
             TaskSpec("types", "multilabel", ["shaming", "stereotype", "violence"])]
    config = HeadConfig(embed_dim=64, tasks=tasks)
    rules = [{"category": "harmful", "task": "level", "labels": ["some", "very"], "threshold": 0.4},
             {"category": "misogynous", "task": "types", "labels": ["shaming", "violence"],
              "threshold": 0.3}]
    logits = {"level": torch.randn(16, 3) * 3, "types": torch.randn(16, 3) * 3}
    probs = {"level": logits["level"].softmax(-1), "types": logits["types"].sigmoid()}
    targets = {"level": torch.randint(0, 3, (16,)), "types": torch.randint(0, 2, (16, 3)).float()}

    served = warning_scores(probs, config, rules)  # what the Predictor applies
    numpy_probs = {k: v.numpy() for k, v in probs.items()}  # what training tunes on
    for rule, task in zip(rules, tasks):
        _, trained = warning_truth_and_scores(numpy_probs, targets, task, rule)
        assert [row[rule["category"]][0] for row in served] == trained.tolist()
        direct = score_warning_rule(probs[task.name], task, rule["labels"])
        assert direct.tolist() == trained.tolist()
    # the rule itself: summed probability (multiclass), max (multilabel)
    torch.testing.assert_close(torch.tensor([row["harmful"][0] for row in served]),
                               probs["level"][:, 1:].sum(-1))
    torch.testing.assert_close(torch.tensor([row["misogynous"][0] for row in served]),
                               probs["types"][:, [0, 2]].max(-1).values)
