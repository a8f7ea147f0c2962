"""Dataset readers: each official format parses, and a malformed line is named by file and line."""

import json
import logging

import pytest

from simclip_train.datasets import (
    DatasetFormatError,
    ReadStats,
    get_dataset,
    list_datasets,
    read_split,
)


def write(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


HARMEME = "\n".join(json.dumps(r) for r in [
    {"id": "covid_memes_1", "image": "covid_memes_1.png", "labels": ["not harmful"],
     "text": "stay home\n"},
    {"id": "covid_memes_2", "image": "covid_memes_2.png",
     "labels": ["somewhat harmful", "individual"], "text": "a joke\n"},
    {"id": "covid_memes_3", "image": "covid_memes_3.png", "labels": ["very harmful", "society"],
     "text": "an attack\n"},
]) + "\n"

MAMI_TRAIN = ("file_name\tmisogynous\tshaming\tstereotype\tobjectification\tviolence\t"
              "Text Transcription\n" +
              "".join(f"{i}.jpg\t{i % 2}\t0\t{i % 2}\t0\t0\tcaption {i}\n" for i in range(1, 41)))
MAMI_TEST = "file_name\tText Transcription\n15001.jpg\tsome text\n15002.jpg\tother text\n"
MAMI_TEST_LABELS = "15001.jpg\t1\t1\t0\t0\t1\n15002.jpg\t0\t0\t0\t0\t0\n"

HATEFUL = "\n".join(json.dumps(r) for r in [
    {"id": 42953, "img": "img/42953.png", "label": 0, "text": "its their character"},
    {"id": 23058, "img": "img/23058.png", "label": 1, "text": "don't be afraid"},
]) + "\n"

MULTIOFF = ("image_name,sentence,label\n"
            "src_1.jpg,\"a meme, with a comma\",offensive\n"
            "src_2.jpg,a calm meme,Non-offensiv\n")

MEMOTION_LABELS = (
    ",image_name,text_ocr,text_corrected,humour,sarcasm,offensive,motivational,"
    "overall_sentiment\n" +
    "".join(f"{i},image_{i}.jpg,ocr {i},text {i},funny,general,slight,not_motivational,"
            f"very_positive\n" for i in range(1, 31)))
MEMOTION_TEST = ("Image_name,Image_URL,OCR_extracted_text,corrected_text\n"
                 "1.jpg,http://x,ocr a,text a\n2.jpg,http://y,ocr b,text b\n")
MEMOTION_GT = "Image_name,Labels\n1.jpg,1_1110_1230\n2.jpg,-1_0000_0000\n"


def test_harmeme_binary_merges_somewhat_and_very_into_harmful_and_the_target_is_opt_in(tmp_path):
    write(tmp_path / "train.jsonl", HARMEME)
    rows = read_split("harmeme-c", tmp_path, "train")
    assert [r.labels["harmful"] for r in rows] == [0, 1, 1]
    assert all("target" not in r.labels for r in rows)  # the authors train the harm level only
    assert [t.name for t in get_dataset("harmeme-c").tasks] == ["harmful"]
    assert rows[1].image == tmp_path / "images" / "covid_memes_2.png"
    assert rows[0].text == "stay home\n"
    with_target = read_split("harmeme-c:binary+target", tmp_path, "train")
    # multilabel over individual, community, society, organization; unlabelled when not harmful
    assert [r.labels["target"] for r in with_target] == [None, [1, 0, 0, 0], [0, 0, 1, 0]]
    spec = get_dataset("harmeme-c:3class+target")
    assert [(t.name, t.kind) for t in spec.tasks] == [("harmfulness", "multiclass"),
                                                       ("target", "multilabel")]
    assert spec.primary_tasks == ["harmfulness"]  # target trains but never selects epochs


def test_harmeme_rows_with_a_missing_level_or_odd_targets_are_skipped_or_adjusted_and_counted(
        tmp_path, caplog):
    rows = [["somewhat harmful"], ["", "individual", "organization"], ["not harmful", "society"],
            ["very harmful", "organization", "community"], ["not harmful"], ["harmless"],
            ["somewhat harmful", "individual", "aliens"]]
    write(tmp_path / "train_v1.jsonl", "".join(
        json.dumps({"id": f"memes_{i}", "image": f"memes_{i}.png", "labels": labels, "text": "t"})
        + "\n" for i, labels in enumerate(rows)))
    stats = ReadStats()
    with caplog.at_level(logging.WARNING, logger="simclip_train.datasets"):
        out = read_split("harmeme-p:3class+target", tmp_path, "train", stats=stats)
    assert [r.id for r in out] == ["memes_0", "memes_2", "memes_3", "memes_4", "memes_6"]
    assert [r.labels["harmfulness"] for r in out] == [1, 0, 2, 0, 1]
    assert [r.labels["target"] for r in out] == [None, None, [0, 1, 0, 1], None, [1, 0, 0, 0]]
    assert (stats.rows, stats.read) == (7, 5)
    assert dict(stats.skipped) == {"empty or unknown harm level": 2}
    assert stats.skipped_lines == ["train_v1.jsonl:2", "train_v1.jsonl:6"]
    assert dict(stats.adjusted) == {
        "harmful meme without a target (target unlabelled)": 1,
        "not harmful meme naming a target (target ignored)": 1,
        "harmful meme with two targets (both labelled)": 1,
        "unknown target name (ignored)": 1}
    assert "harmeme-p:3class+target train: 5 of 7 rows read; skipped 2" in caplog.text
    assert "train_v1.jsonl:2, train_v1.jsonl:6" in caplog.text


def test_harm_p_v0_settings_read_the_v0_files_in_both_settings_and_with_target(tmp_path):
    write(tmp_path / "val.jsonl", HARMEME)
    write(tmp_path / "val_v1.jsonl", HARMEME.splitlines()[0] + "\n")
    assert [r.labels["harmful"] for r in read_split("harmeme-p:binary-v0", tmp_path, "val")] == \
        [0, 1, 1]
    assert [r.labels["harmfulness"] for r in read_split("harmeme-p:3class-v0", tmp_path,
                                                        "val")] == [0, 1, 2]
    assert [r.labels["target"] for r in read_split("harmeme-p:3class-v0+target", tmp_path,
                                                   "val")] == [None, [1, 0, 0, 0], [0, 0, 1, 0]]
    assert get_dataset("harmeme-p:binary-v0").split_files["train"] == ["train.jsonl"]
    assert get_dataset("harmeme-p:binary").split_files["train"] == ["train_v1.jsonl"]


def test_harmeme_three_class_setting_keeps_the_three_levels(tmp_path):
    write(tmp_path / "val.jsonl", HARMEME)
    rows = read_split("harmeme-c:3class", tmp_path, "val")
    assert [r.labels["harmfulness"] for r in rows] == [0, 1, 2]


def test_harm_p_reads_the_deduplicated_v1_files_by_default(tmp_path):
    write(tmp_path / "test_v1.jsonl", HARMEME)
    write(tmp_path / "test.jsonl", HARMEME.splitlines()[0] + "\n")
    assert len(read_split("harmeme-p", tmp_path, "test")) == 3
    assert len(read_split("harmeme-p:binary-v0", tmp_path, "test")) == 1


def test_a_mami_transcription_starting_with_a_quote_keeps_every_row_its_own(tmp_path):
    """MAMI's TSV is unquoted: a transcription that opens with `"` (or holds a tab) is text, not
    a quoted field swallowing the next rows."""
    rows = [f"{i}.jpg\t{i % 2}\t0\t0\t0\t0\tcaption {i}" for i in range(1, 41)]
    rows[4] = '5.jpg\t1\t0\t0\t0\t0\t"There will probably be a meme'
    rows[9] = '10.jpg\t0\t0\t0\t0\t0\ta tab\there, "quoted" words'
    write(tmp_path / "training.csv", MAMI_TRAIN.splitlines()[0] + "\n" + "\n".join(rows) + "\n")
    examples = read_split("mami", tmp_path, "train") + read_split("mami", tmp_path, "val")
    assert len(examples) == 40
    text = {e.id: e.text for e in examples}
    assert text["5"] == '"There will probably be a meme' and text["6"] == "caption 6"
    assert text["10"] == 'a tab\there, "quoted" words'


def test_mami_sub_task_a_is_binary_and_b_multilabel_with_a_fixed_validation_share(tmp_path):
    write(tmp_path / "training.csv", MAMI_TRAIN)
    write(tmp_path / "Test.csv", MAMI_TEST)
    write(tmp_path / "test_labels.txt", MAMI_TEST_LABELS)
    train, val = read_split("mami", tmp_path, "train"), read_split("mami", tmp_path, "val")
    assert len(train) + len(val) == 40 and not {r.id for r in train} & {r.id for r in val}
    assert train[0].labels == {"misogynous": int(train[0].id) % 2}
    test_b = read_split("mami:b", tmp_path, "test")
    assert test_b[0].labels == {"misogyny_type": [1, 0, 0, 1]}
    assert test_b[0].text == "some text" and test_b[0].image == tmp_path / "test" / "15001.jpg"


def test_hateful_memes_maps_dev_seen_and_test_seen_to_val_and_test(tmp_path):
    write(tmp_path / "dev_seen.jsonl", HATEFUL)
    rows = read_split("hateful-memes", tmp_path, "val")
    assert [r.labels["hateful"] for r in rows] == [0, 1]
    assert rows[0].image == tmp_path / "img" / "42953.png"


def test_multioff_reads_quoted_sentences_and_the_non_offensiv_spelling(tmp_path):
    write(tmp_path / "Testing_meme_dataset.csv", MULTIOFF)
    rows = read_split("multioff", tmp_path, "test")
    assert [r.labels["offensive"] for r in rows] == [1, 0]
    assert rows[0].text == "a meme, with a comma"


def test_memotion_has_five_heads_and_merges_sentiment_to_three_levels(tmp_path):
    write(tmp_path / "labels.csv", MEMOTION_LABELS)
    write(tmp_path / "2000_testdata.csv", MEMOTION_TEST)
    write(tmp_path / "Meme_groundTruth.csv", MEMOTION_GT)
    assert len(get_dataset("memotion").tasks) == 5
    train = read_split("memotion", tmp_path, "train")
    assert train[0].labels == {"memotion_humour": 1, "memotion_sarcasm": 1,
                               "memotion_offensive": 1, "memotion_motivational": 0,
                               "memotion_sentiment": 2}
    test = read_split("memotion", tmp_path, "test")
    assert test[0].labels == {"memotion_humour": 1, "memotion_sarcasm": 2,
                              "memotion_offensive": 3, "memotion_motivational": 0,
                              "memotion_sentiment": 2}
    assert test[1].labels["memotion_sentiment"] == 0 and test[1].text == "text b"


def test_memotion_reads_the_ground_truth_also_under_its_name_with_a_space_before_csv(tmp_path):
    from simclip_train.embed import fingerprint_split

    write(tmp_path / "2000_testdata.csv", MEMOTION_TEST)
    # the second row's Task B bits (1000) disagree with its Task C levels (0000): counted
    write(tmp_path / "Meme_groundTruth .csv", MEMOTION_GT.replace("-1_0000_0000", "-1_1000_0000"))
    stats = ReadStats()
    test = read_split("memotion", tmp_path, "test", stats=stats)
    assert [r.labels["memotion_offensive"] for r in test] == [3, 0]
    assert dict(stats.adjusted) == {
        "Task B bits disagree with the Task C levels (the levels are read)": 1}
    spec = get_dataset("memotion")
    before = fingerprint_split(spec, tmp_path, "test", test)
    write(tmp_path / "Meme_groundTruth .csv", MEMOTION_GT)
    assert fingerprint_split(spec, tmp_path, "test", test) != before  # the file is fingerprinted
    (tmp_path / "Meme_groundTruth .csv").unlink()
    with pytest.raises(DatasetFormatError, match="Meme_groundTruth.csv not found"):
        read_split("memotion", tmp_path, "test")


def test_memotion_reports_the_official_task_a_b_c_aggregates():
    spec = get_dataset("memotion")
    assert spec.aggregates == {
        "memotion_task_a": ("macro_f1", ["memotion_sentiment"]),
        "memotion_task_b": ("macro_f1", ["memotion_humour_binary", "memotion_sarcasm_binary",
                                         "memotion_offensive_binary", "memotion_motivational"]),
        "memotion_task_c": ("macro_f1", ["memotion_humour", "memotion_sarcasm",
                                         "memotion_offensive", "memotion_motivational"])}


MALFORMED = [
    ("harmeme-c", "train", "train.jsonl", HARMEME + "{not json\n", 4),
    ("harmeme-c", "train", "train.jsonl",
     HARMEME + json.dumps({"image": "x.png", "labels": "very harmful"}) + "\n", 4),
    ("mami", "train", "training.csv", MAMI_TRAIN + "41.jpg\tyes\t0\t0\t0\t0\ttext\n", 42),
    ("hateful-memes", "train", "train.jsonl", HATEFUL + json.dumps({"img": "img/1.png"}) + "\n",
     3),
    ("multioff", "val", "Validation_meme_dataset.csv", MULTIOFF + "src_3.jpg,text,maybe\n", 4),
    ("memotion", "train", "labels.csv", MEMOTION_LABELS.replace(
        "funny,general,slight", "funny,general,rude", 1), 2),
]


@pytest.mark.parametrize("name,split,filename,text,line", MALFORMED,
                         ids=[f"{m[0]}-{i}" for i, m in enumerate(MALFORMED)])
def test_malformed_line_raises_naming_the_file_and_line(tmp_path, name, split, filename, text,
                                                        line):
    write(tmp_path / filename, text)
    with pytest.raises(DatasetFormatError, match=rf"{filename}, line {line}:"):
        read_split(name, tmp_path, split)


def test_missing_split_file_says_where_it_was_looked_for(tmp_path):
    with pytest.raises(DatasetFormatError, match="val.jsonl not found"):
        read_split("harmeme-c", tmp_path, "val")


def test_unknown_dataset_or_setting_names_the_available_ones():
    with pytest.raises(ValueError, match="available: .*harmeme-c"):
        get_dataset("harmeme-x")
    with pytest.raises(ValueError, match="available: a, b"):
        get_dataset("mami:c")
    assert list_datasets()["harmeme-p"][0] == "binary"
    assert {"binary+target", "3class+target", "binary-v0", "3class-v0"} <= set(
        list_datasets()["harmeme-p"])


def test_harmeme_reader_on_the_real_validation_split_gives_177_memes_116_not_harmful(
        harmeme_val_dir):
    rows = read_split("harmeme-c", harmeme_val_dir, "val")
    assert len(rows) == 177
    assert sum(r.labels["harmful"] == 0 for r in rows) == 116
    assert all(r.image.is_file() for r in rows)
    three = read_split("harmeme-c:3class", harmeme_val_dir, "val")
    assert [sum(r.labels["harmfulness"] == k for r in three) for k in range(3)] == [116, 51, 10]
