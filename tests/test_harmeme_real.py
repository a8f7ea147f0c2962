"""The HarMeme readers on the real annotation files, byte for byte as published
(../shared/data/harmeme-annotations: Harm-C train/val, Harm-P V1 train/val/test), and the real
Harm-P V1 files through `simclip embed` and `simclip train` with the tiny backbone.

The expected counts were tallied by hand from the files (one `labels` list a row):

    harm-c/train.jsonl      3013 rows: 1949 not harmful, 882 somewhat, 182 very; one target each
    harm-c/val.jsonl         177 rows:  116 / 51 / 10; targets individual 50, society 8,
                                        community 3, organization 0
    harm-p-v1/train_v1.jsonl 2938 rows:
        1438 ["not harmful"], 11 ["not harmful", t], 1 ["not harmful", t, t]
        40 ["somewhat harmful"] (no target), 1312 ["somewhat harmful", t], 13 [..., t, t]
        119 ["very harmful", t], 3 ["very harmful", t, t]
        1 ["", "individual", "organization"] (line 1706: no harm level)
    harm-p-v1/val_v1.jsonl   177 rows:   88 / 81 / 8
    harm-p-v1/test_v1.jsonl  355 rows:  184 / 159 / 12
"""

import json
import shutil
import time
import zlib

import pytest
from PIL import Image

from simclip import cli, read_metadata
from simclip_train.datasets import ReadStats, read_split
from tiny import TINY


@pytest.fixture(scope="module")
def annotations():
    """../shared/data/harmeme-annotations (skips, naming why, when absent)."""
    from shared_data import get_shared_data

    return get_shared_data("harmeme-annotations", "harm-p-v1/train_v1.jsonl")


def read(name, folder, split):
    stats = ReadStats()
    return read_split(name, folder, split, stats=stats), stats


def level_counts(rows, task):
    return [sum(r.labels[task] == k for r in rows) for k in range(3 if task == "harmfulness"
                                                                   else 2)]


@pytest.mark.parametrize("split,levels", [("train", [1949, 882, 182]), ("val", [116, 51, 10])])
def test_the_real_harm_c_files_read_every_row_as_is(annotations, split, levels):
    rows, stats = read("harmeme-c:3class", annotations / "harm-c", split)
    assert level_counts(rows, "harmfulness") == levels
    assert (stats.rows, stats.read, dict(stats.skipped), dict(stats.adjusted)) == (
        sum(levels), sum(levels), {}, {})
    binary, _ = read("harmeme-c", annotations / "harm-c", split)
    assert level_counts(binary, "harmful") == [levels[0], levels[1] + levels[2]]


def test_the_real_harm_c_validation_targets_are_the_skewed_50_8_3_0(annotations):
    rows, _ = read("harmeme-c:binary+target", annotations / "harm-c", "val")
    labelled = [r.labels["target"] for r in rows if r.labels["target"] is not None]
    # individual, community, society, organization
    assert [sum(t[k] for t in labelled) for k in range(4)] == [50, 3, 8, 0]


def test_the_real_harm_p_v1_train_file_is_read_to_the_end_with_every_odd_row_counted(
        annotations):
    rows, stats = read("harmeme-p:3class+target", annotations / "harm-p-v1", "train")
    assert (stats.rows, stats.read) == (2938, 2937)
    assert dict(stats.skipped) == {"empty or unknown harm level": 1}
    assert stats.skipped_lines == ["train_v1.jsonl:1706"]
    assert dict(stats.adjusted) == {
        "harmful meme without a target (target unlabelled)": 40,
        "not harmful meme naming a target (target ignored)": 11 + 1,
        "harmful meme with two targets (both labelled)": 13 + 3}
    # not harmful 1438 + 11 + 1; somewhat 40 + 1312 + 13; very 119 + 3
    assert level_counts(rows, "harmfulness") == [1450, 1365, 122]
    assert rows[-1].id == "memes_6794"  # the last line: read to the end
    line_1381 = rows[1380]  # a harmful meme without a target (nothing skipped before it)
    assert line_1381.id == "memes_1788"
    assert (line_1381.labels["harmfulness"], line_1381.labels["target"]) == (1, None)
    targets = [r.labels["target"] for r in rows if r.labels["target"] is not None]
    assert len(targets) == 1365 + 122 - 40
    assert [sum(t[k] for t in targets) for k in range(4)] == [838, 105, 74, 446]
    binary, _ = read("harmeme-p", annotations / "harm-p-v1", "train")
    assert level_counts(binary, "harmful") == [1450, 1487]


@pytest.mark.parametrize("split,levels", [("val", [88, 81, 8]), ("test", [184, 159, 12])])
def test_the_real_harm_p_v1_val_and_test_files_read_every_row_as_is(annotations, split, levels):
    rows, stats = read("harmeme-p:3class", annotations / "harm-p-v1", split)
    assert level_counts(rows, "harmfulness") == levels
    assert (stats.read, dict(stats.skipped), dict(stats.adjusted)) == (sum(levels), {}, {})


@pytest.fixture(scope="module")
def harm_p_with_images(annotations, tmp_path_factory):
    """DATA/harmeme-p: the real V1 annotation files, and a small PNG for every image they name
    (the Harm-P images are not in the shared data)."""
    data = tmp_path_factory.mktemp("harm-p-real")
    root = data / "harmeme-p"
    (root / "images").mkdir(parents=True)
    for split in ("train", "val", "test"):
        src = annotations / "harm-p-v1" / f"{split}_v1.jsonl"
        shutil.copy(src, root / src.name)
        for line in src.read_text(encoding="utf-8").splitlines():
            name = json.loads(line)["image"]
            h = zlib.crc32(name.encode())
            Image.new("RGB", (64, 64), (h & 255, (h >> 8) & 255, (h >> 16) & 255)).save(
                root / "images" / name)
    return data


@pytest.mark.slow  # 9 s alone, up to about 40 s on a loaded machine
def test_the_real_harm_p_v1_files_embed_and_train_with_the_tiny_backbone(harm_p_with_images,
                                                                        tmp_path, capsys):
    data = harm_p_with_images
    start = time.monotonic()
    assert cli.main(["embed", "harmeme-p", "--data-dir", str(data), "--batch-size", "128",
                     *TINY]) == 0
    embedded = time.monotonic() - start
    out = capsys.readouterr().out
    assert "harmeme-p train: 2937 memes" in out
    assert "skipped 1 row(s): empty or unknown harm level (train_v1.jsonl:1706)" in out
    assert "read 40 row(s) with an adjustment: harmful meme without a target" in out
    assert "harmeme-p val: 177 memes" in out and "harmeme-p test: 355 memes" in out
    for setting in ("harmeme-p", "harmeme-p:3class+target"):
        ckpt = tmp_path / f"{setting.replace(':', '_')}.safetensors"
        assert cli.main(["train", "--dataset", setting, "--data-dir", str(data), "--out",
                         str(ckpt), "--epochs", "2", *TINY]) == 0
        meta = read_metadata(ckpt)
        record = meta["training"]["datasets"][0]
        assert (record["train"]["n"], record["val"]["n"]) == (2937, 177)
        assert record["train"]["read"]["skipped"] == {"empty or unknown harm level": 1}
        assert record["train"]["read"]["adjusted"][
            "harmful meme with two targets (both labelled)"] == 16
        assert meta["training"]["selection_tasks"] == [
            "harmful" if setting == "harmeme-p" else "harmfulness"]
    capsys.readouterr()
    assert cli.main(["evaluate", str(ckpt), "harmeme-p:3class+target", "--data-dir",
                     str(data)]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["n"] == 355
    assert set(result["metrics"]["tasks"]) == {"harmfulness", "harmful", "target"}
    total = time.monotonic() - start
    print(f"embedded 3469 memes in {embedded:.1f} s; with training and evaluation {total:.1f} s")
