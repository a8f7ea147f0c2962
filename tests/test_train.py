"""Embed -> train -> evaluate on synthetic memes, with the random-weight tiny backbone on the CPU."""

import json
import logging
import shutil

import pytest
import torch

from simclip import (
    DECODE_VERSION,
    BackboneInfo,
    HeadConfig,
    SimCLIPHead,
    cli,
    load_checkpoint,
    make_metadata,
    read_metadata,
    save_checkpoint,
)
from simclip_train.embed import (
    EmbeddingCache,
    get_backbone_id,
    get_cache_path,
    read_cache_metadata,
)
from simclip_train.synthetic import make_synthetic_dataset
from tiny import TINY

# lr 3e-4: 48 training memes give only 3 steps an epoch; the paper's 1e-4 needs more data.
FAST = ["--train-batch-size", "16", "--lr", "3e-4", "--epochs", "60", "--patience", "60"]


def last_json(text):
    """The JSON object `simclip evaluate` prints last."""
    return json.loads(text.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def synth(tmp_path_factory):
    """48/16/24 rendered memes (harmful = insulting caption) in DATA/harmeme-c."""
    data = tmp_path_factory.mktemp("synth")
    make_synthetic_dataset(data / "harmeme-c", n_train=48, n_val=16, n_test=24, seed=0)
    return data


@pytest.fixture(scope="module")
def ocr_run(synth, tmp_path_factory):
    """OCR -> embed -> train on the synthetic memes; the checkpoint path."""
    ckpt = tmp_path_factory.mktemp("ckpt") / "synth.safetensors"
    assert cli.main(["embed", "harmeme-c", "--data-dir", str(synth), "--text", "ocr",
                     "--ocr", "rapidocr", *TINY]) == 0
    assert cli.main(["train", "--dataset", "harmeme-c", "--data-dir", str(synth), "--text", "ocr",
                     "--ocr", "rapidocr", "--out", str(ckpt), "--seed", "0", *FAST, *TINY]) == 0
    return ckpt


def test_synthetic_memes_are_learned_through_ocr_to_test_macro_f1_of_at_least_095(
        synth, ocr_run, capsys):
    capsys.readouterr()
    assert cli.main(["evaluate", str(ocr_run), "harmeme-c", "--data-dir", str(synth),
                     "--split", "test"]) == 0
    out = capsys.readouterr().out
    assert "| harmful | 24 |" in out and "| task | n | macro-F1 |" in out
    result = last_json(out)
    assert result["text"] == "ocr-rapidocr"
    assert result["metrics"]["tasks"]["harmful"]["macro_f1"] >= 0.95
    assert result["metrics"]["warnings"]["harmful/harmful"]["macro_f1"] >= 0.95
    texts = read_cache_metadata(next((synth / "embeddings").rglob("test.safetensors")))["texts"]
    rows = [json.loads(line) for line in (synth / "harmeme-c" / "test.jsonl").read_text().splitlines()]
    assert sum(" ".join(t.lower().split()) == r["text"] for t, r in zip(texts, rows)) >= 22


def test_an_untrained_head_scores_about_chance_on_the_same_memes(synth, ocr_run, tmp_path,
                                                                 capsys):
    _, meta = load_checkpoint(ocr_run)
    config = HeadConfig(**meta["head_config"])
    torch.manual_seed(1)
    head = SimCLIPHead(config)
    info = BackboneInfo(**meta["backbone"])
    warnings = [{**w, "threshold": 0.5} for w in meta["warnings"]]
    random_ckpt = save_checkpoint(tmp_path / "random.safetensors", head,
                                  make_metadata(config, info, warnings,
                                                training=meta["training"]))
    capsys.readouterr()
    assert cli.main(["evaluate", str(random_ckpt), "harmeme-c", "--data-dir", str(synth)]) == 0
    harmful = last_json(capsys.readouterr().out)["metrics"]["tasks"]["harmful"]
    assert 0.25 <= harmful["accuracy"] <= 0.75 and harmful["macro_f1"] < 0.8


def test_the_trained_checkpoint_loads_in_simclip_predict(synth, ocr_run, capsys):
    rows = [json.loads(line) for line in (synth / "harmeme-c" / "test.jsonl").read_text().splitlines()]
    harmful = next(r for r in rows if r["labels"][0] != "not harmful")
    capsys.readouterr()
    assert cli.main(["predict", str(synth / "harmeme-c" / "images" / harmful["image"]),
                     "--checkpoint", str(ocr_run), "--ocr", "rapidocr",
                     "--pretrained", "none", "--no-zero-shot-fallback"]) == 0
    result = json.loads(capsys.readouterr().out)[0]
    assert result["mode"] == "trained"
    assert [w["id"] for w in result["warnings"]] == ["harmful"]


def test_test_labels_never_influence_model_selection_or_thresholds(synth, tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    for d in (a, b):
        shutil.copytree(synth / "harmeme-c", d / "harmeme-c")
    flipped = []
    for line in (b / "harmeme-c" / "test.jsonl").read_text().splitlines():
        row = json.loads(line)
        row["labels"] = (["not harmful"] if row["labels"][0] != "not harmful"
                         else ["very harmful", "society"])
        flipped.append(json.dumps(row) + "\n")
    (b / "harmeme-c" / "test.jsonl").write_text("".join(flipped))
    for d in (a, b):
        assert cli.main(["train", "--dataset", "harmeme-c", "--data-dir", str(d), "--out",
                         str(d / "ckpt.safetensors"), "--epochs", "8", *TINY]) == 0
    assert (a / "ckpt.safetensors").read_bytes() == (b / "ckpt.safetensors").read_bytes()
    assert not list((a / "embeddings").rglob("test*"))  # training never embeds the test split


def test_embed_resumes_after_an_interruption_and_computes_only_the_rest(synth, tmp_path):
    cache = EmbeddingCache(tmp_path / "cache", synth, model="simclip-tiny", pretrained="none",
                           device="cpu", shard_size=16, progress=False)

    def interrupt(shard):
        if shard == 1:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        cache.get("harmeme-c", "train", on_shard=interrupt)
    path = get_cache_path(tmp_path / "cache", "harmeme-c", "simclip-tiny/random", "dataset",
                          "train", precision=cache.precision)
    assert not path.exists() and len(list(path.parent.rglob("shard-*.safetensors"))) == 2
    _, again = cache.get("harmeme-c", "train")
    assert again["stats"] == {"computed": 16, "reused": 32}
    assert again["image"].shape == (48, 64)
    _, fresh = EmbeddingCache(tmp_path / "other", synth, model="simclip-tiny",
                              pretrained="none", device="cpu", progress=False).get("harmeme-c",
                                                                                   "train")
    assert torch.allclose(again["image"], fresh["image"], atol=1e-6)
    assert torch.allclose(again["text"], fresh["text"], atol=1e-6)


def test_a_changed_dataset_file_makes_the_cache_stale_and_recomputed_with_a_warning(
        synth, tmp_path, caplog):
    data = tmp_path / "data"
    shutil.copytree(synth / "harmeme-c", data / "harmeme-c")
    cache = EmbeddingCache(tmp_path / "cache", data, model="simclip-tiny", pretrained="none",
                           device="cpu", progress=False)
    cache.get("harmeme-c", "val")
    _, reused = cache.get("harmeme-c", "val")
    assert "stats" not in reused
    lines = (data / "harmeme-c" / "val.jsonl").read_text().splitlines()
    (data / "harmeme-c" / "val.jsonl").write_text("\n".join(lines[:-1]) + "\n")
    with caplog.at_level(logging.WARNING, logger="simclip_train.embed"):
        _, redone = cache.get("harmeme-c", "val")
    assert "stale" in caplog.text
    assert redone["stats"]["computed"] == 15 and redone["image"].shape[0] == 15


def test_each_backbone_and_text_source_gets_its_own_cache_file(tmp_path):
    paths = {get_cache_path(tmp_path, "harmeme-c", get_backbone_id(m, p), t, "train")
             for m, p in (("simclip-tiny", "none"), ("ViT-B-32", "openai"))
             for t in ("dataset", "ocr-rapidocr")}
    assert len(paths) == 4


def test_multitask_training_interleaves_datasets_and_maps_labels_to_warning_categories(
        synth, tmp_path, capsys):
    data = tmp_path / "data"
    shutil.copytree(synth / "harmeme-c", data / "harmeme-c")
    hateful = data / "hateful-memes"
    (hateful / "img").mkdir(parents=True)
    for split, name in (("train", "train"), ("val", "dev_seen"), ("test", "test_seen")):
        rows = [json.loads(line) for line in (synth / "harmeme-c" / f"{split}.jsonl").read_text().splitlines()]
        with open(hateful / f"{name}.jsonl", "w") as f:
            for r in rows:
                shutil.copy(synth / "harmeme-c" / "images" / r["image"], hateful / "img")
                f.write(json.dumps({"id": r["id"], "img": f"img/{r['image']}", "text": r["text"],
                                    "label": int(r["labels"][0] != "not harmful")}) + "\n")
    ckpt = tmp_path / "multi.safetensors"
    assert cli.main(["train", "--dataset", "harmeme-c", "--dataset", "hateful-memes",
                     "--data-dir", str(data), "--out", str(ckpt), "--epochs", "3", *TINY]) == 0
    _, meta = load_checkpoint(ckpt)
    # HarMeme's target task is opt-in (harmeme-c:binary+target): not trained by default
    assert [t["name"] for t in meta["head_config"]["tasks"]] == ["harmful", "hateful"]
    assert {w["category"]: w["task"] for w in meta["warnings"]} == {"harmful": "harmful",
                                                                     "hateful": "hateful"}
    assert [d["name"] for d in meta["training"]["datasets"]] == ["harmeme-c:binary",
                                                                 "hateful-memes:seen"]
    assert set(meta["metrics"]["val"]["tasks"]) == {"harmful", "hateful"}
    capsys.readouterr()
    assert cli.main(["evaluate", str(ckpt), "hateful-memes", "--data-dir", str(data)]) == 0
    result = last_json(capsys.readouterr().out)
    assert set(result["metrics"]["tasks"]) == {"hateful"}


def test_evaluate_with_seeds_retrains_the_recipe_and_reports_mean_and_sd(synth, tmp_path,
                                                                         capsys):
    data = tmp_path / "data"
    shutil.copytree(synth / "harmeme-c", data / "harmeme-c")
    ckpt = tmp_path / "c.safetensors"
    assert cli.main(["train", "--dataset", "harmeme-c", "--data-dir", str(data), "--out",
                     str(ckpt), "--epochs", "4", "--seed", "5", *TINY]) == 0
    capsys.readouterr()
    assert cli.main(["evaluate", str(ckpt), "harmeme-c", "--data-dir", str(data),
                     "--seeds", "2"]) == 0
    out = capsys.readouterr().out
    result = last_json(out)
    assert result["seeds"] == [5, 6] and len(result["runs"]) == 2
    mean, sd = result["metrics"]["tasks"]["harmful"]["macro_f1"]
    assert 0.0 <= mean <= 1.0 and sd >= 0.0 and " ± " in out
    single = cli.main(["evaluate", str(ckpt), "harmeme-c", "--data-dir", str(data)])
    assert single == 0
    seed5 = last_json(capsys.readouterr().out)["metrics"]["tasks"]["harmful"]["macro_f1"]
    assert result["runs"][0]["tasks"]["harmful"]["macro_f1"] == pytest.approx(seed5, abs=1e-6)


def copy_dataset(synth, tmp_path, name="harmeme-c"):
    """A private copy of the synthetic Harm-C memes as DATA/<name>."""
    data = tmp_path / "data"
    shutil.copytree(synth / "harmeme-c", data / name)
    return data


def test_thresholds_tuned_on_ocr_text_are_recorded_and_fit_the_ocr_validation_scores(
        synth, tmp_path):
    from simclip_train.metrics import tune_threshold
    from simclip_train.train import predict_probs, warning_truth_and_scores

    data = copy_dataset(synth, tmp_path)
    ckpt = tmp_path / "served.safetensors"
    assert cli.main(["train", "--dataset", "harmeme-c", "--data-dir", str(data), "--out",
                     str(ckpt), "--threshold-text", "ocr", "--ocr", "rapidocr", "--epochs", "6",
                     *TINY]) == 0
    head, meta = load_checkpoint(ckpt)
    assert meta["training"]["text"] == "dataset"  # trained on the transcriptions, as the paper
    assert meta["training"]["threshold_text"] == "ocr-rapidocr"
    assert meta["training"]["thresholds"] == "tuned on validation, ocr-rapidocr text"
    caches = data / "embeddings" / "harmeme-c" / "simclip-tiny_random" / "int8"  # CPU default
    assert sorted(p.name for p in (caches / "ocr-rapidocr").iterdir()) == ["val.safetensors"]
    ocr_val = load_cache_file(caches / "ocr-rapidocr" / "val.safetensors")
    dataset_val = load_cache_file(caches / "dataset" / "val.safetensors")
    assert ocr_val["meta"]["texts"] != dataset_val["meta"]["texts"]  # OCR read the pictures
    rows = [json.loads(line) for line in (data / "harmeme-c" / "val.jsonl").read_text().splitlines()]
    truth = torch.tensor([int(r["labels"][0] != "not harmful") for r in rows])
    rule = meta["warnings"][0]
    task = head.config.tasks[0]
    probs = predict_probs(head, ocr_val["image"], ocr_val["text"])
    y, score = warning_truth_and_scores(probs, {"harmful": truth}, task, rule)
    assert tune_threshold(y, score) == pytest.approx(rule["threshold"], abs=1e-5)
    same = tmp_path / "same.safetensors"
    assert cli.main(["train", "--dataset", "harmeme-c", "--data-dir", str(data), "--out",
                     str(same), "--epochs", "6", *TINY]) == 0
    assert read_metadata(same)["training"]["threshold_text"] == "dataset"
    # `evaluate --seeds` retrains each recipe with its own threshold source
    from simclip_train.config import EmbedConfig
    from simclip_train.evaluate import train_config_from_metadata

    assert train_config_from_metadata(meta, EmbedConfig(), 1).threshold_text == "ocr"
    assert train_config_from_metadata(read_metadata(same), EmbedConfig(), 1).threshold_text == \
        "same"


def test_quickstart_defaults_serve_ocr_tuned_thresholds_and_the_authors_augmentation_on_a_gpu(
        monkeypatch):
    import torch

    from simclip_train import quickstart
    from simclip_train.config import RECOMMENDED_AUGMENT, train_config_from_args

    args = quickstart.parse_args([])  # this machine: a CPU, no augmentation views (issue 15)
    assert (args.threshold_text, args.augment) == ("ocr", 0)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    args = quickstart.parse_args([])
    assert (args.threshold_text, args.augment) == ("ocr", RECOMMENDED_AUGMENT) == ("ocr", 8)
    cfg = train_config_from_args(args, datasets=[quickstart.DATASET])
    assert (cfg.threshold_text, cfg.embed.augment) == ("ocr", 8)
    assert quickstart.parse_args(["--augment", "3", "--device", "cpu"]).augment == 3
    assert train_parse(["--dataset", "harmeme-c", "--data-dir", "D", "--out", "o"]
                       ).threshold_text == "same"


def train_parse(argv):
    from simclip_train.train import parse_args

    return parse_args(argv)


def load_cache_file(path):
    from simclip_train.embed import load_cache

    return load_cache(path)


def test_a_truncated_or_broken_image_never_aborts_embed_and_is_counted(synth, tmp_path, capsys):
    import io

    from PIL import Image

    data = copy_dataset(synth, tmp_path)
    root = data / "harmeme-c"
    rows = [json.loads(line) for line in (root / "train.jsonl").read_text().splitlines()]
    png = root / "images" / rows[0]["image"]
    png.write_bytes(png.read_bytes()[: png.stat().st_size * 2 // 3])  # a truncated PNG
    buf = io.BytesIO()
    Image.open(root / "images" / rows[1]["image"]).convert("RGB").save(buf, "JPEG")
    (root / "images" / "cut.jpg").write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    rows[1]["image"] = "cut.jpg"  # a truncated JPEG
    (root / "images" / "junk.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 40)
    rows[2]["image"] = "junk.png"  # not decodable at all
    (root / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    capsys.readouterr()
    assert cli.main(["embed", "harmeme-c", "--data-dir", str(data), "--splits", "train",
                     *TINY]) == 0
    out = capsys.readouterr().out
    assert "harmeme-c train: 47 memes" in out
    assert f"2 truncated image(s) decoded leniently: {rows[0]['id']}, {rows[1]['id']}" in out
    assert "1 image(s) left out, they do not decode: junk.png" in out
    meta = read_cache_metadata(next((data / "embeddings").rglob("train.safetensors")))
    assert meta["truncated_images"] == [rows[0]["id"], rows[1]["id"]]
    assert [s["id"] for s in meta["skipped_images"]] == [rows[2]["id"]]
    assert rows[2]["id"] not in meta["ids"] and len(meta["ids"]) == 47
    ckpt = tmp_path / "c.safetensors"
    assert cli.main(["train", "--dataset", "harmeme-c", "--data-dir", str(data), "--out",
                     str(ckpt), "--epochs", "2", *TINY]) == 0
    record = read_metadata(ckpt)["training"]["datasets"][0]["train"]
    assert (record["n"], record["truncated_images"], record["skipped_images"]) == (47, 2, 1)


def _reload_as_written_before(cache, split, augment, field, caplog):
    """Drop `field` from the metadata of the cached `split` of harmeme-c (as a version that did
    not write it left it), then read the split again through `cache`, logging into `caplog`."""
    from safetensors.torch import load_file, save_file

    path = get_cache_path(cache.cache_dir, "harmeme-c", "simclip-tiny/random", "dataset",
                          split, augment, precision=cache.precision)
    meta = read_cache_metadata(path)
    assert field in meta
    old = {k: v for k, v in meta.items() if k != field}
    save_file(load_file(str(path)), str(path), metadata={"simclip_cache": json.dumps(old)})
    with caplog.at_level(logging.WARNING, logger="simclip_train.embed"):
        _, redone = cache.get("harmeme-c", split)
    return redone


def test_augmentation_views_use_randaugment_6_ops_magnitude_9_and_an_old_recipe_is_recomputed(
        tmp_path, monkeypatch, caplog):
    import torchvision.transforms

    made = []
    real = torchvision.transforms.RandAugment

    def recording(**kwargs):
        made.append(kwargs)
        return real(**kwargs)

    monkeypatch.setattr(torchvision.transforms, "RandAugment", recording)
    data = tmp_path / "data"
    make_synthetic_dataset(data / "harmeme-c", n_train=12, n_val=2, n_test=2, size=(96, 72))
    cache = EmbeddingCache(tmp_path / "cache", data, model="simclip-tiny", pretrained="none",
                           device="cpu", augment=2, progress=False)
    _, first = cache.get("harmeme-c", "train")
    assert made and all(kw == {"num_ops": 6, "magnitude": 9} for kw in made)
    assert first["image_aug"].shape == (12, 2, 64)
    assert first["meta"]["augment_recipe"] == "torchvision.RandAugment(num_ops=6, magnitude=9)"
    _, again = cache.get("harmeme-c", "train")
    assert "stats" not in again  # same recipe: reused
    redone = _reload_as_written_before(cache, "train", 2, "augment_recipe", caplog)
    assert "stale (augmentation views made with an older recipe" in caplog.text
    assert redone["stats"]["computed"] == 12


def test_a_cache_embedded_under_older_decoding_rules_is_recomputed(synth, tmp_path, caplog):
    data = copy_dataset(synth, tmp_path)
    cache = EmbeddingCache(tmp_path / "cache", data, model="simclip-tiny", pretrained="none",
                           device="cpu", progress=False)
    cache.get("harmeme-c", "val")
    redone = _reload_as_written_before(cache, "val", 0, "decode_version", caplog)
    assert f"decodes by rules {DECODE_VERSION}" in caplog.text
    assert redone["stats"]["computed"] == redone["image"].shape[0] > 0


def test_target_is_opt_in_and_epochs_are_selected_on_the_harm_level_only(synth, tmp_path):
    data = copy_dataset(synth, tmp_path)
    ckpt = tmp_path / "t.safetensors"
    assert cli.main(["train", "--dataset", "harmeme-c:binary+target", "--data-dir", str(data),
                     "--out", str(ckpt), "--epochs", "4", *TINY]) == 0
    meta = read_metadata(ckpt)
    assert [(t["name"], t["kind"]) for t in meta["head_config"]["tasks"]] == [
        ("harmful", "multiclass"), ("target", "multilabel")]
    val = meta["metrics"]["val"]
    assert meta["training"]["selection_tasks"] == val["selection_tasks"] == ["harmful"]
    assert "target" in val["tasks"]
    # the selected score is the harm level's macro-F1 alone, not averaged with the target's
    assert val["mean_macro_f1"] == pytest.approx(val["tasks"]["harmful"]["macro_f1"], abs=1e-6)
    assert max(meta["training"]["val_mean_macro_f1_history"]) == pytest.approx(
        val["mean_macro_f1"], abs=1e-6)


def test_a_three_class_head_reports_three_class_and_binary_and_refuses_missing_tasks(
        synth, tmp_path, capsys):
    data = copy_dataset(synth, tmp_path)
    three = tmp_path / "three.safetensors"
    binary = tmp_path / "binary.safetensors"
    assert cli.main(["train", "--dataset", "harmeme-c:3class", "--data-dir", str(data), "--out",
                     str(three), "--epochs", "4", *TINY]) == 0
    assert cli.main(["train", "--dataset", "harmeme-c", "--data-dir", str(data), "--out",
                     str(binary), "--epochs", "4", *TINY]) == 0
    capsys.readouterr()
    assert cli.main(["evaluate", str(three), "harmeme-c:3class", "--data-dir", str(data)]) == 0
    out = capsys.readouterr().out
    both = last_json(out)
    assert set(both["metrics"]["tasks"]) == {"harmfulness", "harmful"}
    assert "paper metric: harmfulness macro_f1 = " in out
    assert cli.main(["evaluate", str(three), "harmeme-c", "--data-dir", str(data)]) == 0
    as_binary = last_json(capsys.readouterr().out)
    assert as_binary["metrics"]["tasks"]["harmful"] == both["metrics"]["tasks"]["harmful"]
    # a binary head has no three levels: shares no task with harmeme-c:3class
    assert cli.main(["evaluate", str(binary), "harmeme-c:3class", "--data-dir", str(data)]) == 2
    assert "gives no task of dataset setting 'harmeme-c:3class'" in capsys.readouterr().err
    # it shares only some tasks with harmeme-c:binary+target: refused, unless told
    assert cli.main(["evaluate", str(binary), "harmeme-c:binary+target", "--data-dir",
                     str(data)]) == 2
    err = capsys.readouterr().err
    assert "lacks task(s)" in err and "target (not in the head)" in err
    assert "--only-shared-tasks" in err
    assert cli.main(["evaluate", str(binary), "harmeme-c:binary+target", "--data-dir", str(data),
                     "--only-shared-tasks"]) == 0
    out = capsys.readouterr().out
    partial = last_json(out)
    assert partial["missing_tasks"] == ["target"] and set(partial["metrics"]["tasks"]) == {
        "harmful"}
    assert "not evaluated (not in the head): target" in out


def test_the_harm_p_v0_settings_still_train(synth, tmp_path):
    data = tmp_path / "data"
    (data / "harmeme-p").mkdir(parents=True)
    shutil.copytree(synth / "harmeme-c" / "images", data / "harmeme-p" / "images")
    for split in ("train", "val", "test"):  # V0 names: {split}.jsonl
        shutil.copy(synth / "harmeme-c" / f"{split}.jsonl", data / "harmeme-p" / f"{split}.jsonl")
    for setting in ("harmeme-p:binary-v0", "harmeme-p:3class-v0"):
        ckpt = tmp_path / f"{setting.split(':')[1]}.safetensors"
        assert cli.main(["train", "--dataset", setting, "--data-dir", str(data), "--out",
                         str(ckpt), "--epochs", "2", *TINY]) == 0
        assert read_metadata(ckpt)["training"]["datasets"][0]["train"]["n"] == 48


def test_the_quickgelu_build_is_part_of_the_cache_the_checkpoint_and_what_evaluate_rebuilds(
        synth, tmp_path, capsys):
    data = copy_dataset(synth, tmp_path)
    ckpt = tmp_path / "qg.safetensors"
    assert cli.main(["train", "--dataset", "harmeme-c", "--data-dir", str(data), "--out",
                     str(ckpt), "--epochs", "2", "--quick-gelu", *TINY]) == 0
    assert read_metadata(ckpt)["backbone"]["activation"] == "quick_gelu"
    cache = data / "embeddings" / "harmeme-c" / "simclip-tiny_random_quickgelu" / "int8" / "dataset"
    meta = read_cache_metadata(cache / "train.safetensors")
    assert meta["backbone_info"]["activation"] == "quick_gelu"
    capsys.readouterr()
    assert cli.main(["evaluate", str(ckpt), "harmeme-c", "--data-dir", str(data)]) == 0
    assert last_json(capsys.readouterr().out)["backbone"] == "simclip-tiny/random/quickgelu"
    assert cli.main(["evaluate", str(ckpt), "harmeme-c", "--data-dir", str(data),
                     "--no-quick-gelu"]) == 2
    assert "was trained on simclip-tiny/random/quickgelu, not simclip-tiny/random" in \
        capsys.readouterr().err
    gelu = tmp_path / "gelu.safetensors"
    assert cli.main(["train", "--dataset", "harmeme-c", "--data-dir", str(data), "--out",
                     str(gelu), "--epochs", "2", *TINY]) == 0
    assert read_metadata(gelu)["backbone"]["activation"] == "gelu"
