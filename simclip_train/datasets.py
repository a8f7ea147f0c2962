"""Dataset readers: each dataset's official files -> examples (image path, text, labels per task).

A dataset is named `NAME[:setting]` (e.g. `harmeme-c:3class`, `mami:b`). `get_dataset(name)`
returns its `DatasetSpec`: the head tasks it trains, the warning categories those feed, and the
reader. `read_split(name, root, split)` returns a list of `Example`; a label the dataset does not
give for an example (e.g. the HarMeme target of a harmless meme) is None, which the loss skips.
A file that is not in the dataset's format raises `DatasetFormatError` naming the file and line;
a well-formed row whose label cannot be used (e.g. an empty HarMeme harm level) is skipped and
counted in a `ReadStats` (`read_split(..., stats=ReadStats())`), and rows read with a documented
adjustment (e.g. a harmful meme without a target) are counted there too. Nothing stops on them.

HarMeme rows, as the published files have them (Harm-P V1 `train_v1.jsonl` has all of these):
    * the harm level is `labels[0]`; an empty or unknown level: the row is skipped and counted;
    * the targets are `labels[1:]`; the `target` task (opt-in: settings `binary+target`,
      `3class+target`) is multilabel over individual / community / society / organization,
      labelled for harmful memes that name at least one target (two targets: both are 1);
    * a harmful meme that names no target is read with its target unlabelled (counted);
    * a "not harmful" meme that names a target is read as not harmful, its target ignored
      (targets are annotated for harmful memes only; counted).

Layouts (the dataset folder is `DATA_DIR/<name>`, see docs/reproduce.md):
    harmeme-c      {train,val,test}.jsonl + images/      (id, image, labels, text)
    harmeme-p      {train,val,test}_v1.jsonl + images/   (V1, deduplicated; setting *-v0 reads
                                                           {train,val,test}.jsonl)
    mami           training.csv + training/, Test.csv + test_labels.txt + test/   (TSV)
    hateful-memes  train.jsonl, dev_seen.jsonl, test_seen.jsonl (+ *_unseen) + img/
    multioff       {Training,Validation,Testing}_meme_dataset.csv + img/
    memotion       labels.csv + images/, 2000_testdata.csv + Meme_groundTruth.csv (also read as
                   'Meme_groundTruth .csv', the name it circulates under too) + 2000_data/
"""

import csv
import hashlib
import io
import json
import logging
import shlex
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image, ImageFile

from simclip import (
    ALLOWED_IMAGE_FORMATS,
    MULTICLASS,
    MULTILABEL,
    CorruptImageError,
    SimCLIPError,
    TaskSpec,
    decode_image,
)

logger = logging.getLogger(__name__)

SPLITS = ("train", "val", "test")
VAL_FRACTION = 0.1  # held-out share of the training file where a dataset has no validation split


class DatasetFormatError(SimCLIPError, ValueError):
    """A dataset file is missing or malformed; the message names the file and line."""

    code = "bad_dataset"


@dataclass
class Example:
    """One meme: where its image is, its text, and its label per task (None = not given)."""

    id: str
    image: Path
    text: str
    labels: dict = field(default_factory=dict)  # task -> class index, or list of 0/1, or None


@dataclass
class ReadStats:
    """What a reader did with the rows of one split.

    `skipped` counts rows left out, by reason (each also listed in `skipped_lines` as
    'file:line'); `adjusted` counts rows read with a documented adjustment, by what was done.
    """

    read: int = 0  # examples returned
    skipped: Counter = field(default_factory=Counter)
    adjusted: Counter = field(default_factory=Counter)
    skipped_lines: list = field(default_factory=list)

    @property
    def rows(self):
        """Rows of the split: read + skipped."""
        return self.read + sum(self.skipped.values())

    def skip(self, path, line, reason):
        """Count a row left out, and where it is."""
        self.skipped[reason] += 1
        self.skipped_lines.append(f"{Path(path).name}:{line}")

    def note(self, what):
        """Count a row read with an adjustment."""
        self.adjusted[what] += 1

    def to_dict(self):
        """Plain JSON-able dict (for cache and checkpoint metadata)."""
        return {"rows": self.rows, "read": self.read, "skipped": dict(sorted(self.skipped.items())),
                "adjusted": dict(sorted(self.adjusted.items())),
                "skipped_lines": list(self.skipped_lines)}

    def summary(self):
        """One line: '2937 of 2938 rows read; skipped 1 (...); adjusted: 40 ...'."""
        out = f"{self.read} of {self.rows} rows read"
        if self.skipped:
            out += f"; skipped {sum(self.skipped.values())} (" + ", ".join(
                f"{n} {why}" for why, n in sorted(self.skipped.items())) + \
                f"; at {', '.join(self.skipped_lines[:10])})"
        if self.adjusted:
            out += "; read with an adjustment: " + ", ".join(
                f"{n} {what}" for what, n in sorted(self.adjusted.items()))
        return out


@dataclass(frozen=True)
class DerivedTask:
    """A task computed from another one by merging its classes: each derived class's
    probability is the sum of its source classes' (e.g. binary harmful from the 3 levels)."""

    task: TaskSpec  # the derived task (multiclass)
    source: str  # the task it is computed from
    groups: tuple  # per derived class, the source class indices it merges


@dataclass
class DatasetSpec:
    """A dataset in one setting: its tasks, the warning rules they feed, and its reader."""

    name: str  # e.g. 'harmeme-c'
    setting: str  # e.g. 'binary'
    tasks: list  # TaskSpec list
    warning_rules: list  # [{"category", "task", "labels"}]; the threshold is tuned in training
    reader: object  # reader(root, split, spec, stats) -> list[Example]
    # split -> files (relative to the root) the split is read from; an entry may be a tuple of
    # the names one file is published under (the first that exists is read)
    split_files: dict
    # task -> the metric the papers report: the dataset's PRIMARY tasks. Training selects the
    # epoch on the mean macro-F1 over the primary tasks only; other tasks (HarMeme's opt-in
    # `target`) are auxiliary.
    primary_metric: dict = field(default_factory=dict)
    report_tasks: list = field(default_factory=list)  # DERIVED_TASKS names evaluate also reports
    # official aggregates: name -> (metric, [tasks]) whose mean is reported (Memotion A/B/C)
    aggregates: dict = field(default_factory=dict)

    @property
    def key(self):
        """'name:setting', the name a user types."""
        return f"{self.name}:{self.setting}"

    @property
    def primary_tasks(self):
        """Names of the tasks the dataset's papers report (epoch selection uses only these)."""
        return [t.name for t in self.tasks if t.name in self.primary_metric]


def _fail(path, line, msg):
    raise DatasetFormatError(f"{path}, line {line}: {msg}")


def _need_file(path):
    if not path.is_file():
        raise DatasetFormatError(f"{path} not found; see `simclip datasets info` for the layout")
    return path


def find_split_file(root, entry):
    """The path of one `split_files` entry: a name, or a tuple of the names one file is
    published under (the first that exists; else the first name, for the error message)."""
    names = (entry,) if isinstance(entry, str) else tuple(entry)
    for name in names:
        if (Path(root) / name).is_file():
            return Path(root) / name
    return Path(root) / names[0]


def get_split_paths(spec, root, split):
    """The files one split of `spec` is read from, under `root`."""
    return [find_split_file(root, entry) for entry in spec.split_files[split]]


def _is_val(key):
    """Deterministic held-out membership: the same ids are in validation on every machine."""
    return int(hashlib.sha256(key.encode()).hexdigest()[:8], 16) / 0xFFFFFFFF < VAL_FRACTION


def _read_jsonl(path):
    """(line number, object) pairs of a JSON-lines file; blank lines are skipped."""
    _need_file(path)
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as e:
                _fail(path, n, f"not valid JSON ({e.msg})")
            if not isinstance(obj, dict):
                _fail(path, n, "expected a JSON object")
            yield n, obj


def _read_table(path, delimiter, required, header=True, names=None):
    """(line number, row dict) pairs of a CSV/TSV file with the `required` columns.

    A TSV (MAMI's) is read one line per row, quotes as text: its transcriptions are unquoted and
    may start with a `"`, which a CSV quote rule would take as the start of a field running over
    the next lines (rows merged into one, silently). A tab inside the last column's text is kept.
    """
    _need_file(path)
    tsv = delimiter == "\t"
    with open(path, encoding="utf-8-sig", newline="") as f:
        reader = csv.reader(f, delimiter=delimiter, quoting=csv.QUOTE_NONE if tsv else csv.QUOTE_MINIMAL)
        if header:
            names = next(reader, None)
            if names is None:
                _fail(path, 1, "empty file")
            names = [c.strip() for c in names]
            missing = [c for c in required if c not in names]
            if missing:
                _fail(path, 1, f"missing column(s) {missing}; header is {names}")
        for row in reader:
            n = reader.line_num
            if not any(c.strip() for c in row):
                continue
            if len(row) < len(names):
                _fail(path, n, f"expected {len(names)} fields, got {len(row)}")
            if tsv and len(row) > len(names):  # tabs inside the text of the last column
                row = [*row[:len(names) - 1], "\t".join(row[len(names) - 1:])]
            yield n, dict(zip(names, row))


def _label_index(path, line, value, labels, what):
    if value not in labels:
        _fail(path, line, f"unknown {what} {value!r}; expected one of {list(labels)}")
    return labels[value]


def is_truncated(data):
    """True when JPEG or PNG data lacks its end (the EOI marker, the IEND chunk): the file was
    cut short. Other formats: False (a cut one fails to decode instead)."""
    tail = data[-64:]
    if data[:2] == b"\xff\xd8":
        return b"\xff\xd9" not in tail
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return b"IEND" not in tail
    return False


def decode_dataset_image(path):
    """(RGB image, truncated) of a local dataset image, decoded leniently.

    `simclip.decode_image` first (format allowlist, size caps). If it refuses the data as
    corrupt, the file is decoded again with PIL's LOAD_TRUNCATED_IMAGES, as the authors' code
    did: what the file holds is decoded, the rest left blank. `truncated` says the file was cut
    short (`is_truncated`) or needed that second decode, whichever decoder painted it.

    Raises:
        ImageError, OSError: the file does not decode even leniently.
    """
    data = Path(path).read_bytes()
    truncated = is_truncated(data)
    try:
        return decode_image(data), truncated
    except CorruptImageError:
        pass
    # The flag is global to Pillow: set only around this one decode, in the single thread
    # that embeds a dataset (the server never decodes this way).
    before = ImageFile.LOAD_TRUNCATED_IMAGES
    ImageFile.LOAD_TRUNCATED_IMAGES = True
    try:
        with Image.open(io.BytesIO(data), formats=list(ALLOWED_IMAGE_FORMATS)) as img:
            img.load()
            return decode_image(img), True
    except (OSError, SyntaxError, ValueError, EOFError) as e:
        raise CorruptImageError(f"{path}: does not decode even leniently ({e})") from e
    finally:
        ImageFile.LOAD_TRUNCATED_IMAGES = before


# ---------------------------------------------------------------- HarMeme (Harm-C, Harm-P)

HARM_LEVELS = ["not harmful", "somewhat harmful", "very harmful"]
HARM_TARGETS = ["individual", "community", "society", "organization"]


SKIP_HARM_LEVEL = "empty or unknown harm level"
HARMFUL_NO_TARGET = "harmful meme without a target (target unlabelled)"
NOT_HARMFUL_WITH_TARGET = "not harmful meme naming a target (target ignored)"
TWO_TARGETS = "harmful meme with two targets (both labelled)"
UNKNOWN_TARGET = "unknown target name (ignored)"


def read_harmeme(root, split, spec, stats):
    """HarMeme jsonl: labels [level, target...] (see the module docstring for every case)."""
    path = root / spec.split_files[split][0]
    level_task = spec.tasks[0].name
    with_target = any(t.name == "target" for t in spec.tasks)
    out = []
    for n, obj in _read_jsonl(path):
        for key in ("image", "labels"):
            if key not in obj:
                _fail(path, n, f"missing field {key!r}")
        labels = obj["labels"]
        if not isinstance(labels, list) or not all(isinstance(v, str) for v in labels):
            _fail(path, n, f"labels {labels!r} must be a list of strings [level, target...]")
        if not labels or labels[0].strip() not in HARM_LEVELS:
            stats.skip(path, n, SKIP_HARM_LEVEL)
            continue
        level = HARM_LEVELS.index(labels[0].strip())
        named = []
        for name in labels[1:]:
            if name.strip() in HARM_TARGETS:
                if name.strip() not in named:
                    named.append(name.strip())
            else:
                stats.note(UNKNOWN_TARGET)
        target = None
        if level == 0:
            if named:
                stats.note(NOT_HARMFUL_WITH_TARGET)
        elif not named:
            stats.note(HARMFUL_NO_TARGET)
        else:
            if len(named) > 1:
                stats.note(TWO_TARGETS)
            target = [int(t in named) for t in HARM_TARGETS]
        task = {"harmfulness": level} if level_task == "harmfulness" else {"harmful": int(level > 0)}
        if with_target:
            task["target"] = target
        out.append(Example(str(obj.get("id", Path(obj["image"]).stem)), root / "images" /
                           obj["image"], str(obj.get("text", "")), task))
    return out


HARMEME_SETTINGS = ("binary", "3class", "binary+target", "3class+target")
HARMEME_P_SETTINGS = (*HARMEME_SETTINGS, "binary-v0", "3class-v0", "binary-v0+target",
                      "3class-v0+target")


def _harmeme_spec(name, setting):
    """`binary` (default) or `3class` harm level; `+target` adds the multilabel target task
    (auxiliary: never used to select epochs); Harm-P `-v0` reads the older V0 files."""
    level, _, extra = setting.partition("+")
    three = level.startswith("3class")
    version = "" if level.endswith("-v0") or name == "harmeme-c" else "_v1"
    level_task = (TaskSpec("harmfulness", MULTICLASS, HARM_LEVELS) if three
                  else TaskSpec("harmful", MULTICLASS, ["not harmful", "harmful"]))
    warn = ({"category": "harmful", "task": "harmfulness", "labels": HARM_LEVELS[1:]} if three
            else {"category": "harmful", "task": "harmful", "labels": ["harmful"]})
    tasks = [level_task]
    if extra == "target":
        tasks.append(TaskSpec("target", MULTILABEL, HARM_TARGETS))
    return DatasetSpec(name, setting, tasks, [warn], read_harmeme,
                       {s: [f"{s}{version}.jsonl"] for s in SPLITS},
                       {level_task.name: "macro_f1"}, report_tasks=["harmful"] if three else [])


# ---------------------------------------------------------------- MAMI (SemEval-2022 Task 5)

MAMI_TYPES = ["shaming", "stereotype", "objectification", "violence"]
MAMI_COLUMNS = ["file_name", "misogynous", *MAMI_TYPES]


def _binary_field(path, line, row, column):
    value = row[column].strip()
    if value not in ("0", "1"):
        _fail(path, line, f"column {column!r} must be 0 or 1, got {value!r}")
    return int(value)


def _mami_labels(path, line, row, sub_b):
    if sub_b:
        return {"misogyny_type": [_binary_field(path, line, row, c) for c in MAMI_TYPES]}
    return {"misogynous": _binary_field(path, line, row, "misogynous")}


def read_mami(root, split, spec, stats):
    """MAMI TSV files: training.csv (train/val), Test.csv + test_labels.txt (test)."""
    sub_b = spec.setting == "b"
    out = []
    if split in ("train", "val"):
        path = root / "training.csv"
        for n, row in _read_table(path, "\t", [*MAMI_COLUMNS, "Text Transcription"]):
            if _is_val(row["file_name"]) != (split == "val"):
                continue
            out.append(Example(Path(row["file_name"]).stem, root / "training" / row["file_name"],
                               row["Text Transcription"], _mami_labels(path, n, row, sub_b)))
        return out
    texts = {row["file_name"]: row["Text Transcription"] for _, row in
             _read_table(root / "Test.csv", "\t", ["file_name", "Text Transcription"])}
    path = root / "test_labels.txt"
    for n, row in _read_table(path, "\t", MAMI_COLUMNS, header=False, names=MAMI_COLUMNS):
        if row["file_name"] not in texts:
            _fail(path, n, f"{row['file_name']!r} is not in {root / 'Test.csv'}")
        out.append(Example(Path(row["file_name"]).stem, root / "test" / row["file_name"],
                           texts[row["file_name"]], _mami_labels(path, n, row, sub_b)))
    return out


def _mami_spec(setting):
    if setting == "b":
        task = TaskSpec("misogyny_type", MULTILABEL, MAMI_TYPES)
        warn = {"category": "misogynous", "task": "misogyny_type", "labels": MAMI_TYPES}
        metric = "mami_b_f1"  # the official scorer's (metrics.mami_subtask_b_f1)
    else:
        task = TaskSpec("misogynous", MULTICLASS, ["not misogynous", "misogynous"])
        warn = {"category": "misogynous", "task": "misogynous", "labels": ["misogynous"]}
        metric = "macro_f1"
    return DatasetSpec("mami", setting, [task], [warn], read_mami,
                       {"train": ["training.csv"], "val": ["training.csv"],
                        "test": ["Test.csv", "test_labels.txt"]}, {task.name: metric})


# ---------------------------------------------------------------- Hateful Memes

HATEFUL_FILES = {"train": "train.jsonl", "val": "dev_seen.jsonl", "test": "test_seen.jsonl",
                 "dev_unseen": "dev_unseen.jsonl", "test_unseen": "test_unseen.jsonl"}


def read_hateful(root, split, spec, stats):
    """Hateful Memes jsonl: id, img ('img/01235.png'), text, label (0/1)."""
    path = root / spec.split_files[split][0]
    out = []
    for n, obj in _read_jsonl(path):
        for key in ("img", "text"):
            if key not in obj:
                _fail(path, n, f"missing field {key!r}")
        label = obj.get("label")
        if label not in (0, 1, None):
            _fail(path, n, f"label must be 0 or 1, got {label!r}")
        out.append(Example(str(obj.get("id", Path(obj["img"]).stem)), root / obj["img"],
                           str(obj["text"]), {"hateful": label}))
    return out


def _binary_spec(name, setting, category, reader, files, metric):
    """A dataset with one binary task named `category` ('not <category>' / '<category>'), one
    file per split, warned on as the category itself."""
    task = TaskSpec(category, MULTICLASS, [f"not {category}", category])
    return DatasetSpec(name, setting, [task],
                       [{"category": category, "task": category, "labels": [category]}],
                       reader, {s: [f] for s, f in files.items()}, {category: metric})


def _hateful_spec(setting):
    return _binary_spec("hateful-memes", setting, "hateful", read_hateful, HATEFUL_FILES, "auroc")


# ---------------------------------------------------------------- MultiOFF

MULTIOFF_FILES = {"train": "Training_meme_dataset.csv", "val": "Validation_meme_dataset.csv",
                  "test": "Testing_meme_dataset.csv"}
MULTIOFF_LABELS = {"non-offensiv": 0, "non-offensive": 0, "offensive": 1}


def read_multioff(root, split, spec, stats):
    """MultiOFF csv: image_name, sentence, label ('offensive' / 'Non-offensiv')."""
    path = root / spec.split_files[split][0]
    out = []
    for n, row in _read_table(path, ",", ["image_name", "sentence", "label"]):
        label = _label_index(path, n, row["label"].strip().lower(), MULTIOFF_LABELS, "label")
        out.append(Example(Path(row["image_name"]).stem, root / "img" / row["image_name"],
                           row["sentence"], {"offensive": label}))
    return out


def _multioff_spec(setting):
    return _binary_spec("multioff", setting, "offensive", read_multioff, MULTIOFF_FILES,
                        "macro_f1")


# ---------------------------------------------------------------- Memotion 7k

MEMOTION_LEVELS = {
    "humour": ["not_funny", "funny", "very_funny", "hilarious"],
    "sarcasm": ["not_sarcastic", "general", "twisted_meaning", "very_twisted"],
    "offensive": ["not_offensive", "slight", "very_offensive", "hateful_offensive"],
    "motivational": ["not_motivational", "motivational"],
}
SENTIMENT = ["negative", "neutral", "positive"]
SENTIMENT_5_TO_3 = {"very_negative": 0, "negative": 0, "neutral": 1, "positive": 2,
                    "very_positive": 2}
# The test ground truth circulates under both names (the second with a space before .csv).
MEMOTION_GROUND_TRUTH = ("Meme_groundTruth.csv", "Meme_groundTruth .csv")
MEMOTION_B_DISAGREES = "Task B bits disagree with the Task C levels (the levels are read)"


def read_memotion(root, split, spec, stats):
    """Memotion 7k: labels.csv (train/val, 10% held out by id), official test files (test)."""
    out = []
    if split in ("train", "val"):
        path = root / "labels.csv"
        columns = ["image_name", "text_corrected", *MEMOTION_LEVELS, "overall_sentiment"]
        for n, row in _read_table(path, ",", columns):
            if _is_val(row["image_name"]) != (split == "val"):
                continue
            labels = {f"memotion_{k}": _label_index(path, n, row[k].strip(),
                                                    {v: i for i, v in enumerate(levels)}, k)
                      for k, levels in MEMOTION_LEVELS.items()}
            labels["memotion_sentiment"] = _label_index(
                path, n, row["overall_sentiment"].strip(), SENTIMENT_5_TO_3, "overall_sentiment")
            text = row["text_corrected"].strip() or row.get("text_ocr", "")
            out.append(Example(Path(row["image_name"]).stem, root / "images" / row["image_name"],
                               text, labels))
        return out
    texts = {}
    for _, row in _read_table(root / "2000_testdata.csv", ",", ["Image_name", "corrected_text"]):
        texts[row["Image_name"]] = row["corrected_text"].strip() or row.get("OCR_extracted_text",
                                                                             "")
    path = find_split_file(root, MEMOTION_GROUND_TRUTH)
    for n, row in _read_table(path, ",", ["Image_name", "Labels"]):
        parts = row["Labels"].strip().split("_")  # sentiment(-1/0/1)_taskB(4 bits)_taskC(4 levels)
        if (len(parts) != 3 or parts[0] not in ("-1", "0", "1") or len(parts[2]) != 4
                or not parts[2].isdigit()):
            _fail(path, n, f"Labels {row['Labels']!r} is not 'S_BBBB_CCCC'")
        levels = [int(c) for c in parts[2]]
        if len(parts[1]) == 4 and [c != "0" for c in parts[1]] != [v > 0 for v in levels]:
            stats.note(MEMOTION_B_DISAGREES)
        labels = {}
        for (k, names), v in zip(MEMOTION_LEVELS.items(), levels):
            if v >= len(names):
                _fail(path, n, f"{k} level {v} out of range 0..{len(names) - 1}")
            labels[f"memotion_{k}"] = v
        labels["memotion_sentiment"] = int(parts[0]) + 1
        name = row["Image_name"]
        if name not in texts:
            _fail(path, n, f"{name!r} is not in {root / '2000_testdata.csv'}")
        out.append(Example(Path(name).stem, root / "2000_data" / name, texts[name], labels))
    return out


def _memotion_spec(setting):
    tasks = [TaskSpec(f"memotion_{k}", MULTICLASS, v) for k, v in MEMOTION_LEVELS.items()]
    tasks.append(TaskSpec("memotion_sentiment", MULTICLASS, SENTIMENT))
    warn = {"category": "offensive", "task": "memotion_offensive",
            "labels": MEMOTION_LEVELS["offensive"][1:]}
    binary = [f"memotion_{k}_binary" for k in ("humour", "sarcasm", "offensive")]
    scales = [f"memotion_{k}" for k in MEMOTION_LEVELS]
    return DatasetSpec("memotion", setting, tasks, [warn], read_memotion,
                       {"train": ["labels.csv"], "val": ["labels.csv"],
                        "test": ["2000_testdata.csv", MEMOTION_GROUND_TRUTH]},
                       {t.name: "macro_f1" for t in tasks}, report_tasks=binary,
                       aggregates={
                           # SemEval-2020 Task 8, each the official macro-F1 (mean over subtasks)
                           "memotion_task_a": ("macro_f1", ["memotion_sentiment"]),
                           "memotion_task_b": ("macro_f1", [*binary, "memotion_motivational"]),
                           "memotion_task_c": ("macro_f1", scales)})


# ---------------------------------------------------------------- derived tasks

# Tasks evaluate can compute from another task of a head (see DerivedTask): binary harmful from
# the 3 HarMeme levels (a 3-class head is reported in both settings), and Memotion's Task B
# (humour / sarcasm / offensive: yes or no) from its Task C scales.
DERIVED_TASKS = {d.task.name: d for d in [
    DerivedTask(TaskSpec("harmful", MULTICLASS, ["not harmful", "harmful"]), "harmfulness",
                ((0,), (1, 2))),
    *[DerivedTask(TaskSpec(f"memotion_{k}_binary", MULTICLASS, [v[0], k]), f"memotion_{k}",
                  ((0,), tuple(range(1, len(v)))))
      for k, v in MEMOTION_LEVELS.items() if k != "motivational"],
]}


# ---------------------------------------------------------------- registry

DATASETS = {
    "harmeme-c": (HARMEME_SETTINGS, lambda s: _harmeme_spec("harmeme-c", s)),
    "harmeme-p": (HARMEME_P_SETTINGS, lambda s: _harmeme_spec("harmeme-p", s)),
    "mami": (("a", "b"), _mami_spec),
    "hateful-memes": (("seen",), _hateful_spec),
    "multioff": (("binary",), _multioff_spec),
    "memotion": (("c",), _memotion_spec),
}


def list_datasets():
    """Every dataset name, each with its settings (the first is the default)."""
    return {name: list(settings) for name, (settings, _) in DATASETS.items()}


def get_dataset(name):
    """The DatasetSpec of `NAME[:setting]` (default setting when none is given)."""
    base, _, setting = name.partition(":")
    if base not in DATASETS:
        raise ValueError(f"unknown dataset {base!r}; available: {', '.join(DATASETS)}")
    settings, build = DATASETS[base]
    setting = setting or settings[0]
    if setting not in settings:
        raise ValueError(f"dataset {base!r} has no setting {setting!r}; "
                         f"available: {', '.join(settings)}")
    return build(setting)


class DatasetNotFoundError(DatasetFormatError):
    """A dataset's files are not in the data folder (the message says how to get them)."""

    code = "dataset_not_found"


# datasets `simclip datasets fetch` downloads; the others are on request (`simclip datasets info`)
FETCHABLE = ("harmeme-c",)


def check_dataset(data_dir, name, splits=("train", "val", "test")):
    """Raise DatasetNotFoundError when a split file of `name` is not in DATA_DIR, naming the file
    and the command that fetches the dataset (or `simclip datasets info`): commands call it
    before they build a backbone. Splits the dataset does not have are left to `read_split`."""
    spec = get_dataset(name)
    data_dir = Path(data_dir)
    root = get_dataset_root(data_dir, name)
    missing = [path for split in splits if split in spec.split_files
               for path in get_split_paths(spec, root, split) if not path.is_file()]
    if not missing:
        return
    flat = root == data_dir and any(path.is_file() for split in spec.split_files
                                    for path in get_split_paths(spec, data_dir, split))
    if root == data_dir and not flat:  # no trace of it: name the folder where it belongs
        missing = [data_dir / spec.name / path.relative_to(data_dir) for path in missing]
    if spec.name in FETCHABLE:
        how = f"fetch it with: simclip datasets fetch {spec.name} --data-dir {shlex.quote(str(data_dir))}"
    else:
        how = (f"it cannot be downloaded automatically; `simclip datasets info {spec.name}` says "
               f"where to request it and where its files go")
    raise DatasetNotFoundError(f"dataset {spec.name} not found: no {missing[0]}; {how}")


def get_dataset_root(data_dir, name):
    """The folder of dataset `name`: DATA_DIR/<name>, or DATA_DIR itself if it holds the files."""
    data_dir = Path(data_dir)
    sub = data_dir / name.partition(":")[0]
    return sub if sub.is_dir() else data_dir


def read_split(name, root, split, stats=None):
    """Read one split of a dataset.

    Args:
        name: `NAME[:setting]`, see `list_datasets()`.
        root: the dataset folder (see the module docstring for each layout).
        split: 'train', 'val' or 'test' (Hateful Memes also 'dev_unseen', 'test_unseen').
        stats: optional `ReadStats` to fill: rows read, skipped (by reason) and adjusted.
            Skipped rows are also logged as a warning.

    Returns:
        A list of `Example`, in file order.

    Raises:
        DatasetFormatError: a missing file, or a malformed line (named with its file and line).
    """
    spec = get_dataset(name)
    if split not in spec.split_files:
        raise ValueError(f"dataset {spec.name!r} has no split {split!r}; "
                         f"available: {', '.join(spec.split_files)}")
    stats = ReadStats() if stats is None else stats
    out = spec.reader(Path(root), split, spec, stats)
    stats.read = len(out)
    if stats.skipped:
        logger.warning("%s %s: %s", spec.key, split, stats.summary())
    elif stats.adjusted:
        logger.info("%s %s: %s", spec.key, split, stats.summary())
    return out


def read_transcriptions(data_dir, limit=None, annotations="val.jsonl"):
    """(image path, reference text) pairs from DIR/<annotations> (fields image, text) and
    DIR/images/, for OCR benchmarks: the HarMeme folders in ../shared/data have this layout."""
    data_dir = Path(data_dir)
    items = []
    with open(data_dir / annotations, encoding="utf-8") as f:
        for line in f:
            if line.strip():
                row = json.loads(line)
                text = row.get("text") or ""
                if text.strip() == "null":  # a missing transcription in HarMeme
                    text = ""
                items.append((data_dir / "images" / row["image"], text))
    return items[:limit] if limit else items
