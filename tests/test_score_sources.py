"""`simclip score` on corpora as they come (issue 18), the same on both engines: a bad source is
an error row and the run goes on; every shard member is accounted for; table columns as the
ecosystem writes them; no input at all says why. Each case runs on the local engine and on Ray
(a local Ray instance with 2 CPUs, started once, for the Ray cases only)."""

import base64
import codecs
import csv
import io
import os
import tarfile

import pytest

from score_support import TINY, by_path, require
from simclip_score import cli as score_cli
from simclip_score.output import read_rows
from simclip_score.sources import SourceStats, Unit, expand_unit, plan_units


def score(engine, *args):
    return score_cli.main([*map(str, args), *TINY, "--no-progress", "--ocr", "none",
                           "--engine", engine])


@pytest.fixture(scope="module")
def memes(harmeme_val_dir):
    """Three real memes' bytes."""
    return [p.read_bytes() for p in sorted((harmeme_val_dir / "images").glob("*.png"))[:3]]


def _table(path, column, values, dtype=None):
    pa, pq = require("pyarrow"), require("pyarrow.parquet")
    pq.write_table(pa.table({column: pa.array(values, dtype), "label": list(range(len(values)))}),
                   path)
    return path


def test_one_bad_source_never_stops_the_run(engine, memes, tmp_path, capsys):
    """Three good tables, one cut in half, one of zero bytes and a CSV list saved in cp1252
    (café.png): every picture is scored, each bad table is one error row under its name."""
    good = [_table(tmp_path / f"good{i}.parquet", "image", [m]) for i, m in enumerate(memes)]
    cut = tmp_path / "cut.parquet"
    cut.write_bytes(good[0].read_bytes()[: len(good[0].read_bytes()) // 2])
    empty = tmp_path / "zero.parquet"
    empty.write_bytes(b"")
    (tmp_path / "café.png").write_bytes(memes[1])
    listing = tmp_path / "list.csv"
    listing.write_bytes("path,label\ncafé.png,1\n".encode("cp1252"))
    out = tmp_path / "s.jsonl"
    assert score(engine, *good, cut, empty, listing, "--out", out) == 1  # error rows written
    rows = by_path(read_rows(out))
    assert {p for p, r in rows.items() if r["error"] is None} == {
        f"{good[0]}#0", f"{good[1]}#0", f"{good[2]}#0", str(tmp_path / "café.png")}
    assert rows[str(cut)]["error"] == rows[str(empty)]["error"] == "unreadable_file"
    assert "cannot read the table" in rows[str(empty)]["error_message"]
    summary = capsys.readouterr().out
    assert "sources: 6 (4 read, 2 with unreadable parts, 0 with no input)" in summary


def _shard(path, memes):
    """A shard as GNU tar and real crawls write them: a hard link to an identical file, a
    '.jpg_large' member, a member with no suffix, webdataset's metadata and data members."""
    with tarfile.open(path, "w") as tar:
        def add(name, data, kind=tarfile.REGTYPE, link=""):
            info = tarfile.TarInfo(name)
            info.type, info.linkname, info.size = kind, link, len(data)
            tar.addfile(info, io.BytesIO(data) if data else None)

        add("0001.png", memes[0])
        add("0001.json", b'{"caption": "hi"}')
        add("0002.png", b"", tarfile.LNKTYPE, "0001.png")  # GNU tar's second copy of a file
        add("0003.jpg_large", memes[1])  # a name as Twitter's downloads give it
        add("0004", memes[2])  # no suffix: sniffed
        add("0005", b"just some text, not a picture")
        add("0006.cls", b"1")
        add("__key__", b"meta")
        add("dir", b"", tarfile.DIRTYPE)
        add("0007.png", b"", tarfile.LNKTYPE, "missing.png")  # a link to nothing
    return path


def test_every_shard_member_is_scored_an_error_row_or_counted_skipped(engine, memes, tmp_path,
                                                                      capsys):
    shard = _shard(tmp_path / "shard-000.tar", memes)
    out = tmp_path / "s.jsonl"
    assert score(engine, shard, "--out", out) == 1  # the dangling link's error row
    rows = by_path(read_rows(out))
    assert {p.rsplit("/", 1)[1] for p, r in rows.items() if r["error"] is None} == {
        "0001.png", "0002.png", "0003.jpg_large", "0004"}
    assert rows[f"{shard}/0002.png"]["sha256"] == rows[f"{shard}/0001.png"]["sha256"]
    assert rows[f"{shard}/0007.png"]["error"] == "unreadable_file"
    summary = capsys.readouterr().out
    for reason, n in [("not an image (.json)", 1), ("not an image (.cls)", 1),
                      ("not an image (content)", 1), ("webdataset metadata (__key__)", 1),
                      ("folder entry", 1)]:
        assert f"| {reason} | {n} |" in summary, summary


def test_a_compressed_shard_reads_symbolic_links_inside_it_and_gz_members(engine, memes,
                                                                          tmp_path):
    """A .tar.gz shard: a symbolic link to a member is read as that member, one to a path
    outside the shard is an error row (never read from the disk), a '.png.gz' member is a png."""
    import gzip

    shard = tmp_path / "shard-000.tar.gz"
    with tarfile.open(shard, "w:gz") as tar:
        def add(name, data=b"", kind=tarfile.REGTYPE, link=""):
            info = tarfile.TarInfo(name)
            info.type, info.linkname, info.size = kind, link, len(data)
            tar.addfile(info, io.BytesIO(data) if data else None)

        add("0001.png", memes[0])
        add("0002.png", kind=tarfile.SYMTYPE, link="0001.png")
        add("sub/0003.png", kind=tarfile.SYMTYPE, link="../0001.png")
        add("0004.png", kind=tarfile.SYMTYPE, link="/etc/hostname")
        add("0005.png.gz", gzip.compress(memes[1]))
    out = tmp_path / "s.jsonl"
    assert score(engine, shard, "--out", out) == 1  # the link out of the shard
    rows = by_path(read_rows(out))
    assert {p.split(".tar.gz/", 1)[1]: r["error"] for p, r in rows.items()} == {
        "0001.png": None, "0002.png": None, "sub/0003.png": None,
        "0004.png": "unreadable_file", "0005.png.gz": None}
    assert rows[f"{shard}/0002.png"]["sha256"] == rows[f"{shard}/sub/0003.png"]["sha256"] == \
        rows[f"{shard}/0001.png"]["sha256"]


def test_table_columns_as_hugging_face_and_crawls_write_them(engine, memes, tmp_path):
    """A Sequence(Image) column is one row per picture, id 'table#row/index', never the bytes;
    a column of data: URIs is pictures, not file paths."""
    pa = require("pyarrow")
    image = pa.struct([("bytes", pa.binary()), ("path", pa.string())])
    seq = _table(tmp_path / "seq.parquet", "images",
                 [[{"bytes": memes[0], "path": "a.png"}, {"bytes": memes[1], "path": "b.png"}],
                  [], [{"bytes": memes[2], "path": None}]], pa.list_(image))
    uris = _table(tmp_path / "uris.parquet", "url",
                  [f"data:image/png;base64,{base64.b64encode(memes[0]).decode()}",
                   "data:image/png;base64,!!!"], pa.large_string())
    out = tmp_path / "s.jsonl"
    assert score(engine, seq, uris, "--out", out) == 1  # the undecodable URI
    rows = by_path(read_rows(out))
    assert set(rows) == {f"{seq}#0/0", f"{seq}#0/1", f"{seq}#2/0", f"{uris}#0", f"{uris}#1"}
    assert all(rows[k]["error"] is None for k in (f"{seq}#0/0", f"{seq}#0/1", f"{seq}#2/0"))
    assert rows[f"{uris}#0"]["sha256"] == rows[f"{seq}#0/0"]["sha256"]
    assert rows[f"{uris}#1"]["error"] == "corrupt_image"


def test_a_csv_column_of_data_uris_is_pictures_whatever_their_size(engine, memes, tmp_path):
    """A data: URI of a real meme is longer than the csv module's default field limit (128 KiB):
    each is a picture, never the table's error row."""
    uris = [f"data:image/png;base64,{base64.b64encode(m).decode()}" for m in memes[:2]]
    assert max(map(len, uris)) > 131072
    listing = tmp_path / "uris.csv"
    with open(listing, "w", newline="") as f:  # as pandas and Excel write it: the URI quoted
        csv.writer(f).writerows([("url", "label"), *((u, i) for i, u in enumerate(uris))])
    out = tmp_path / "s.jsonl"
    assert score(engine, listing, "--out", out) == 0
    rows = by_path(read_rows(out))
    assert set(rows) == {f"{listing}#0", f"{listing}#1"}
    assert all(r["error"] is None for r in rows.values())


def test_a_dictionary_encoded_column_is_read_as_its_values(memes, tmp_path):
    """pandas writes a `category` column as dictionary<string> (and pyarrow reads it back so):
    its values are paths like any string column's."""
    pa = require("pyarrow")
    for i, data in enumerate(memes[:2]):
        (tmp_path / f"{i}.png").write_bytes(data)
    table = _table(tmp_path / "t.parquet", "path",
                   pa.array(["0.png", "1.png", "0.png"]).dictionary_encode())
    stats = SourceStats("t")
    items = [i for u in plan_units([str(table)]) for i in expand_unit(u, stats)]
    assert [i.path for i in items] == [str(tmp_path / n) for n in ("0.png", "1.png", "0.png")]


def test_a_column_that_holds_no_pictures_is_refused_before_the_model_loads(tmp_path, capsys,
                                                                         monkeypatch):
    import simclip_score.work as work

    monkeypatch.setattr(work.ScoreConfig, "load_predictor",
                        lambda *a, **k: pytest.fail("the model loaded before the column check"))
    table = _table(tmp_path / "t.parquet", "image", [1, 2])
    assert score("local", table, "--out", tmp_path / "s.jsonl") == 2
    err = capsys.readouterr().err
    assert "column 'image' is int64" in err and "struct<bytes, path>" in err


@pytest.mark.parametrize("case", ["empty folder", "zero-row table"])
def test_a_run_with_no_input_says_why_and_exits_2(engine, case, tmp_path, capsys):
    if case == "empty folder":
        source = tmp_path / "memes"
        source.mkdir()
        (source / "notes.txt").write_text("x")
        why = "no pictures in the folder (1 other files)"
    else:
        pa = require("pyarrow")
        source = _table(tmp_path / "t.parquet", "image", [], pa.binary())
        why = "a table of 0 rows"
    assert score(engine, source, "--out", tmp_path / "s.jsonl") == 2
    assert f"no inputs: {source}: {why}" in capsys.readouterr().err


def test_an_empty_source_beside_others_is_warned_about(engine, memes, tmp_path, capsys):
    """An empty folder or a zero-row table among sources that gave pictures: the run scores
    the others (exit 0) and says on stderr which sources gave nothing, and why."""
    pa = require("pyarrow")
    (tmp_path / "m.png").write_bytes(memes[0])
    (tmp_path / "empty").mkdir()
    table = _table(tmp_path / "t.parquet", "image", [], pa.binary())
    assert score(engine, tmp_path / "m.png", tmp_path / "empty", table,
                 "--out", tmp_path / "s.jsonl") == 0
    err = capsys.readouterr().err
    assert "sources that gave no input" in err, err
    assert f"{tmp_path / 'empty'}: no pictures in the folder" in err
    assert f"{table}: a table of 0 rows" in err


def test_a_list_in_utf16_or_with_a_cp1252_name_on_disk_is_read(memes, tmp_path):
    (tmp_path / "é.png").write_bytes(memes[0])
    raw = os.path.join(os.fsencode(tmp_path), b"caf\xe9.png")  # a Latin-1 name on disk
    with open(raw, "wb") as f:
        f.write(memes[1])
    (tmp_path / "u16.txt").write_bytes(codecs.BOM_UTF16_LE + "é.png\n".encode("utf-16-le"))
    (tmp_path / "w.txt").write_bytes(b"caf\xe9.png\n")
    stats = SourceStats("x")
    ids = [i.id for s in ("u16.txt", "w.txt")
           for u in plan_units([str(tmp_path / s)]) for i in expand_unit(u, stats)]
    assert ids == [str(tmp_path / "é.png"), f"{tmp_path}/caf\\xe9.png"]


def test_a_table_is_planned_by_row_group_and_read_lazily(memes, tmp_path, monkeypatch):
    """The plan holds row groups, never pictures (what Ray's read tasks get); a row group is
    read a record batch at a time, so the first input comes before the table is read."""
    pa, pq = require("pyarrow"), require("pyarrow.parquet")
    path = tmp_path / "t.parquet"
    pq.write_table(pa.table({"image": [memes[i % 3] for i in range(64)]}), path,
                   row_group_size=16)
    units = plan_units([str(path)])
    assert [(u.row_group, u.first_row) for u in units] == [(0, 0), (1, 16), (2, 32), (3, 48)]
    import pickle

    assert all(len(pickle.dumps(u)) < 1000 for u in units)
    from simclip_score import tables

    batches = []
    real = tables.open_parquet

    def counting(p):
        pf = real(p)
        it = pf.iter_batches

        def iter_batches(**kw):
            for b in it(**kw):
                batches.append(b.num_rows)
                yield b
        pf.iter_batches = iter_batches
        return pf

    monkeypatch.setattr(tables, "open_parquet", counting)
    stream = expand_unit(units[1], SourceStats("t"))
    first = next(stream)
    assert first.id == f"{path}#16" and batches == [tables.BATCH_ROWS]
    assert isinstance(units[0], Unit)


def test_the_local_engine_pulls_inputs_only_as_slots_free(memes, harmeme_val_dir):
    """Back-pressure: the engine has taken at most `inflight` inputs from the stream when the
    first row is written, whatever the corpus size."""
    from simclip_score.local import LocalEngine
    from simclip_score.sources import Item
    from simclip_score.work import ScoreConfig

    config = ScoreConfig(model="simclip-tiny", pretrained="none", device="cpu", ocr="none",
                         workers=1, batch_size=2)
    pulled, at_first_row = [0], []

    def stream():
        for i in range(200):
            pulled[0] += 1
            yield Item(f"m{i}", data=memes[i % 3] + bytes([i]))

    def emit(rows):
        if not at_first_row:
            at_first_row.append(pulled[0])

    LocalEngine(config.load_predictor(), config, emit, inflight=4).run(stream())
    assert at_first_row[0] <= 4 + 1, at_first_row  # the slots, plus the one waiting for one


def test_the_inputs_are_counted_from_names_lines_and_footers_for_the_progress_bar(memes, tmp_path):
    """count_inputs gives the number of inputs the run will meet (the bar's total), without
    reading a picture; None where that needs the contents (shards, columns of picture lists)."""
    from simclip_score.sources import count_inputs, iter_items

    pa = require("pyarrow")
    folder = tmp_path / "folder"
    (folder / "sub").mkdir(parents=True)
    for i, data in enumerate(memes):
        (folder / ("sub" if i else ".") / f"{i}.png").write_bytes(data)
    (folder / "notes.json").write_text("{}")  # skipped, not an input
    listing = tmp_path / "list.txt"
    listing.write_text(f"{folder}/0.png\nhttps://example.com/a.png\n\n")
    table = tmp_path / "t.parquet"
    pq = require("pyarrow.parquet")
    pq.write_table(pa.table({"image": pa.array([memes[0], None, memes[1]], pa.binary())}), table,
                   row_group_size=2)
    sources = [folder, listing, table, tmp_path / "missing.png", f"{folder}/sub/*.png"]
    units = plan_units(map(str, sources))
    assert count_inputs(units) == len(list(iter_items(map(str, sources)))) == 3 + 2 + 3 + 1 + 2
    seq = _table(tmp_path / "seq.parquet", "images", [[memes[0]], [memes[1], memes[2]]],
                 pa.list_(pa.binary()))
    assert count_inputs(plan_units([str(seq)])) is None
    assert count_inputs(plan_units([str(_shard(tmp_path / "s.tar", memes))])) is None


@pytest.mark.parametrize("resumed", [False, True])
def test_the_progress_bar_gets_a_total_and_counts_inputs_left_out(memes, tmp_path, capsys,
                                                                  monkeypatch, resumed):
    tqdm = require("tqdm")
    bars = []

    class Kept(tqdm.tqdm):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            bars.append(self)

    monkeypatch.setattr(tqdm, "tqdm", Kept)
    for i, data in enumerate(memes):
        (tmp_path / f"{i}.png").write_bytes(data)
    out = tmp_path / "out" / "s.jsonl"
    if resumed:
        assert score_cli.main([str(tmp_path / "0.png"), "--out", str(out), *TINY, "--ocr",
                               "none", "--no-progress"]) == 0
    assert score_cli.main([str(tmp_path), "--out", str(out), *TINY, "--ocr", "none"]) == 0
    (bar,) = bars
    assert (bar.n, bar.total) == (3, 3)  # the input already in --out counts as done
    assert len(read_rows(out)) == 3


def _window_sources(memes, tmp_path):
    """One unit of each kind that lists many inputs, with skipped members or files and an
    unreadable part between its inputs."""
    pa, pq = require("pyarrow"), require("pyarrow.parquet")
    folder = tmp_path / "folder"
    (folder / "sub").mkdir(parents=True)
    for i, data in enumerate(memes):
        (folder / f"{i}.png").write_bytes(data)
        (folder / f"{i}.txt").write_text("caption")  # skipped, between two inputs
        (folder / "sub" / f"{i}.png").write_bytes(data)
    shard = _shard(tmp_path / "shard.tar", memes)
    cut = tmp_path / "cut.tar"
    cut.write_bytes(shard.read_bytes()[:5000])  # members, then damage: an error row
    listing = tmp_path / "list.txt"
    listing.write_text("".join(f"{folder}/{i}.png\n# note\n" for i in range(3)))
    table = tmp_path / "seq.parquet"
    pq.write_table(pa.table({"images": pa.array([[memes[0]], [], [memes[1], memes[2]]],
                                                pa.list_(pa.binary()))}), table)
    return [folder, shard, cut, listing, table]


@pytest.mark.parametrize("take", [1, 2, 3])
def test_the_windows_of_a_unit_give_its_inputs_and_counts_once(memes, tmp_path, take):
    """The Ray engine's rounds read a big unit as windows (skip, take): read one after another,
    they give every input of the unit once, in order, and add up to the unit's counts."""
    from dataclasses import replace

    from simclip_score.sources import expand_window

    for unit in plan_units(map(str, _window_sources(memes, tmp_path))):
        whole = SourceStats(unit.source)
        expected = [i.id for i in expand_unit(unit, whole)]
        stats, ids, skip = SourceStats(unit.source), [], 0
        while skip <= len(expected):
            ids += [i.id for i in expand_window(replace(unit, skip=skip, take=take), stats)]
            skip += take
        assert ids == expected, unit
        assert stats.as_dict() == whole.as_dict(), unit
        last = SourceStats(unit.source)  # a last window reads to the unit's end
        assert [i.id for i in expand_window(replace(unit, skip=1), last)] == expected[1:]


def test_a_round_takes_units_up_to_its_budget_and_cuts_the_one_that_does_not_fit(memes,
                                                                                tmp_path):
    from collections import deque

    from simclip_score.ray_engine import plan_round

    folder, shard, cut, listing, table = _window_sources(memes, tmp_path)
    units = plan_units(map(str, [*[folder / f"{i}.png" for i in range(3)], folder, shard,
                                 listing, table]))
    queue, todo, rounds = deque(), iter(units), []
    while planned := plan_round(queue, todo, 4, {}):
        rounds.append([(u.kind, u.skip, u.take) for u in planned])
    assert rounds == [
        [("file", 0, None)] * 3 + [("folder", 0, 1)],  # 6 pictures below it: cut after 1
        [("folder", 1, 4)],
        [("folder", 5, None), ("tar", 0, 3)],  # 6 members may be pictures (headers)
        [("tar", 3, None), ("list", 0, 1)],
        [("list", 1, None), ("parquet", 0, 2)],
        [("parquet", 2, None)],  # 3 rows: the estimate of a column of lists (4 pictures)
    ]
    assert plan_round(deque(), iter(units), 0, {}) == units  # 0: one round, nothing estimated


def test_rounds_read_every_input_once_on_ray(memes, tmp_path, capsys, caplog, monkeypatch):
    """A run of several Ray Data datasets (--ray-round-inputs 2) writes the rows and counts of
    one dataset (0), and of the local engine; the driver gives its free heap back after each
    round."""
    import logging

    require("ray")
    from simclip import trim_heap
    from simclip_score import ray_engine

    trims = []
    monkeypatch.setattr(ray_engine, "trim_heap", lambda: trims.append(1) or trim_heap())
    sources = _window_sources(memes, tmp_path)
    summaries = {}
    for name, engine, extra in [("local", "local", []), ("one", "ray", ["0"]),
                                ("rounds", "ray", ["2"])]:
        out = tmp_path / f"{name}.jsonl"
        with caplog.at_level(logging.INFO, logger="simclip_score.ray_engine"):
            caplog.clear()
            trims.clear()
            args = ["--ray-round-inputs", *extra] if extra else []
            assert score(engine, *sources, "--out", out, *args) == 1  # the damaged shard
        rows = by_path(read_rows(out))
        summary = capsys.readouterr().out
        summaries[name] = (sorted((p, r["error"], r["sha256"]) for p, r in rows.items()),
                           summary[summary.index("sources:"):summary.index("rows in")])
        if name == "rounds":
            assert "round 5:" in caplog.text and "Ray Data rounds" in summary
            assert len(trims) >= 5  # one per round
        elif name == "one":
            assert len(trims) == 1
        trims.clear()
    assert summaries["rounds"] == summaries["one"] == summaries["local"]


def test_the_ray_dedup_registry_remembers_the_last_pictures_only(monkeypatch):
    """As the local engine: a copy is found among the last DEDUP_MEMORY distinct pictures, and
    a copy met after more is scored again; the registry does not grow with the corpus."""
    from simclip_score import dedup

    monkeypatch.setattr(dedup, "DEDUP_MEMORY", 2)
    registry = dedup.DedupRegistry()
    assert registry.claim([("1", "a"), ("2", "b"), ("3", "a"), ("4", "c")]) == [
        True, True, False, True]  # "a" was met again just before "c": "b" is forgotten
    assert registry.claim([("5", "b"), ("6", "c"), ("7", "a")]) == [True, False, True]
    assert len(registry.first) == 2 and registry.take_copies() == {"a": ["3"], "c": ["6"]}
    assert registry.take_copies() == {}  # each copy handed over once (a round at a time)


def test_a_local_run_leaves_glibcs_mmap_threshold_alone(memes, tmp_path, monkeypatch):
    """A fixed mmap threshold held the local engine's RSS flat but cost OCR 1.37x its
    throughput (docs/bench.md): a run leaves glibc's dynamic threshold as it is; a memory-bound
    run sets MALLOC_MMAP_THRESHOLD_ itself."""
    from simclip import heap

    calls = []
    monkeypatch.setattr(heap, "_mallopt", lambda param, value: calls.append(param) or True)
    (tmp_path / "m.png").write_bytes(memes[0])
    assert score("local", tmp_path / "m.png", "--out", tmp_path / "a.jsonl") == 0
    assert heap.M_MMAP_THRESHOLD not in calls, calls
