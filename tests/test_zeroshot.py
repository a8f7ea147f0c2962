"""Zero-shot, honestly (issue 9 C): grammatical prompts, a fitted calibration tied to its
backbone and prompts, and uncalibrated scores marked as such."""

import json

import numpy as np
import pytest
import torch

from simclip import CheckpointError, cli
from simclip.zeroshot import (
    PROMPT_TEMPLATES,
    ZERO_SHOT_PROMPTS,
    ZeroShotScorer,
    get_calibration_path,
    list_prompts,
    load_calibration,
)
from simclip_train.calibrate import fit_logistic
from simclip_train.synthetic import make_synthetic_dataset
from tiny import TINY


def test_every_prompt_is_a_sentence_without_a_wrong_article():
    for positives, negatives in ZERO_SHOT_PROMPTS.values():
        for prompt in list_prompts(positives) + list_prompts(negatives):
            assert prompt.endswith(".") and "  " not in prompt
            words = prompt.lower().split()
            for article, word in zip(words, words[1:]):
                if article == "a":
                    assert word[0] not in "aeiou", prompt  # "a offensive meme"
    assert len(PROMPT_TEMPLATES) >= 3


def test_positive_and_negative_descriptions_never_share_a_phrase():
    for category, (positives, negatives) in ZERO_SHOT_PROMPTS.items():
        assert not set(positives) & set(negatives), category


def test_logistic_fit_separates_a_separable_feature_and_is_deterministic():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 3))
    y = (x[:, 1] > 0.2).astype(int)
    w1, b1 = fit_logistic(x, y)
    w2, b2 = fit_logistic(x, y)
    assert (w1, b1) == (w2, b2)
    assert w1[1] > 5 * max(abs(w1[0]), abs(w1[2]))
    assert fit_logistic(x, np.ones(200, int))[0] == [0.0, 0.0, 0.0]


@pytest.fixture(scope="module")
def calibrated(tmp_path_factory):
    """`simclip calibrate` on synthetic memes with the tiny backbone: (data dir, calibration path)."""
    data = tmp_path_factory.mktemp("zs")
    make_synthetic_dataset(data / "harmeme-c", n_train=8, n_val=40, n_test=8, seed=3)
    out = data / "calibration.json"
    assert cli.main(["calibrate", "--dataset", "harmeme-c", "--data-dir", str(data), "--text",
                     "dataset", "--out", str(out), *TINY]) == 0
    return data, out


def test_calibrate_fits_the_harmful_category_on_validation_and_says_what_it_used(calibrated, capsys):
    _, out = calibrated
    raw = json.loads(out.read_text())
    assert raw["backbone"] == "simclip-tiny/random"
    assert raw["data"] == {"datasets": ["harmeme-c:binary"], "split": "val", "text": "dataset"}
    harmful = raw["categories"]["harmful"]
    assert set(raw["categories"]) == {"harmful"}  # Harm-C labels only this category
    assert harmful["metrics"]["n"] == 40 and 0.0 <= harmful["threshold"] <= 1.0
    assert len(harmful["weights"]) == 3


def test_calibrate_refuses_the_test_split(calibrated, capsys):
    data, _ = calibrated
    assert cli.main(["calibrate", "--dataset", "harmeme-c", "--data-dir", str(data), "--split",
                     "test", *TINY]) == 2
    assert "refusing to fit on the test split" in capsys.readouterr().err


def test_a_calibrated_scorer_uses_the_fit_for_its_categories_only(calibrated, tiny_backbone):
    _, out = calibrated
    cal = load_calibration(out, tiny_backbone.info.id)
    scorer = ZeroShotScorer(tiny_backbone, cal)
    assert scorer.is_calibrated("harmful") and not scorer.is_calibrated("misogynous")
    assert scorer.thresholds["harmful"] == cal.categories["harmful"].threshold
    assert scorer.thresholds["misogynous"] == 0.5
    img, txt = tiny_backbone.encode_texts(["a", "b"]), tiny_backbone.encode_texts(["c", ""])
    has_text = torch.tensor([True, False])
    feats = scorer.margins(img, txt, has_text)
    c = cal.categories["harmful"]
    k = scorer.categories.index("harmful")
    want = torch.sigmoid((feats[:, k, :] * torch.tensor(c.weights)).sum(-1) + c.bias)
    got = torch.tensor([row["harmful"] for row in scorer(img, txt, has_text)])
    torch.testing.assert_close(got, want.float())
    plain = ZeroShotScorer(tiny_backbone)
    assert [r["misogynous"] for r in plain(img, txt, has_text)] == \
           [r["misogynous"] for r in scorer(img, txt, has_text)]


def test_a_calibration_for_another_backbone_or_other_prompts_is_refused(calibrated, monkeypatch,
                                                                        tmp_path):
    _, out = calibrated
    with pytest.raises(CheckpointError, match="calibrates backbone simclip-tiny/random, not ViT-B-32"):
        load_calibration(out, "ViT-B-32/openai/quickgelu")
    monkeypatch.setitem(ZERO_SHOT_PROMPTS, "harmful", (("mean",), ("nice",)))
    with pytest.raises(CheckpointError, match="other zero-shot prompts; rerun `simclip calibrate`"):
        load_calibration(out, "simclip-tiny/random")
    bad = tmp_path / "bad.json"
    bad.write_text("{\"backbone\": 3}")
    with pytest.raises(CheckpointError, match="not a valid zero-shot calibration"):
        load_calibration(bad, "simclip-tiny/random")


def test_the_default_calibration_path_is_per_backbone_in_the_user_cache(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    path = get_calibration_path("ViT-L-14-336/openai/quickgelu")
    assert path == tmp_path / "simclip" / "calibration" / "ViT-L-14-336__openai__quickgelu.json"


def _png():
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (64, 48), (30, 200, 30)).save(buf, "PNG")
    return buf.getvalue()


def test_uncalibrated_zero_shot_output_says_so_everywhere(monkeypatch, tmp_path):
    from simclip import load_classifier

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))  # no stored calibration
    p = load_classifier(model="simclip-tiny", pretrained="none", device="cpu", ocr="none")
    assert p.calibrated is False
    assert {c["calibrated"] for c in p.list_categories()} == {False}
    assert p.predict([_png()])[0]["calibrated"] is False


def test_the_stored_calibration_for_the_backbone_is_found_and_changes_the_identity(
        calibrated, monkeypatch, tmp_path, caplog):
    from simclip import load_classifier

    _, out = calibrated
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    kwargs = {"model": "simclip-tiny", "pretrained": "none", "device": "cpu", "ocr": "none"}
    plain = load_classifier(**kwargs)
    stored = get_calibration_path("simclip-tiny/random")
    stored.parent.mkdir(parents=True)
    stored.write_text(out.read_text())
    p = load_classifier(**kwargs)
    cats = {c["id"]: c for c in p.list_categories()}
    fitted = json.loads(out.read_text())["categories"]["harmful"]
    assert cats["harmful"]["calibrated"] and cats["harmful"]["default_threshold"] == round(fitted["threshold"], 4)
    assert not cats["misogynous"]["calibrated"]
    assert p.identity != plain.identity  # cached results of the uncalibrated scorer are not reused
    assert load_classifier(**kwargs, calibration="none").identity == plain.identity
    # a stored file that no longer fits is skipped with a warning; an explicit one must fit
    stored.write_text(out.read_text().replace('"prompts": "', '"prompts": "x'))
    with caplog.at_level("WARNING", logger="simclip.zeroshot"):
        assert load_classifier(**kwargs).calibrated is False
    assert "ignoring the zero-shot calibration" in caplog.text
    with pytest.raises(CheckpointError, match="other zero-shot prompts"):
        load_classifier(**kwargs, calibration=stored)


def test_evaluate_reports_zero_shot_auroc_per_category_calibrated_or_not(calibrated, capsys,
                                                                        monkeypatch, tmp_path):
    data, out = calibrated
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    base = ["evaluate", "zero-shot", "harmeme-c", "--data-dir", str(data), "--split", "test",
            "--text", "dataset", *TINY]
    assert cli.main([*base, "--calibration", "none"]) == 0
    plain = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    harmful = plain["metrics"]["warnings"]["harmful"]
    assert harmful["calibrated"] is False and harmful["threshold"] == 0.5 and harmful["n"] == 8
    assert harmful["auroc"] == harmful["auroc_uncalibrated"]
    assert cli.main([*base, "--calibration", str(out)]) == 0
    fitted = json.loads(capsys.readouterr().out.strip().splitlines()[-1])["metrics"]["warnings"]["harmful"]
    assert fitted["calibrated"] is True
    assert fitted["threshold"] == round(json.loads(out.read_text())["categories"]["harmful"]["threshold"], 6)
    assert fitted["auroc_uncalibrated"] == harmful["auroc_uncalibrated"]
