"""`simclip score` on what real corpora hold: names, links, shards, tables, URLs and an --out
that is not ours. Each test names a fault (a crash, a lost or renamed file, rows dropped or
scored from partial bytes) and fails if it comes back."""

import csv
import http.server
import os
import tarfile

import pytest
from http_fakes import serve_loopback

from score_support import TINY, by_path, make_corpus, require
from simclip_score import cli as score_cli
from simclip_score.output import read_rows
from simclip_score.sources import iter_items


def score(*args, engine="local"):
    return score_cli.main([*map(str, args), *TINY, "--no-progress", "--ocr", "none",
                           "--engine", engine])


@pytest.fixture(scope="module")
def corpus(harmeme_val_dir, tmp_path_factory):
    return make_corpus(tmp_path_factory.mktemp("corpora"), harmeme_val_dir / "images", 3)


@pytest.fixture()
def meme(corpus):
    return sorted(corpus.glob("covid*.png"))[0]


def test_an_out_that_is_not_ours_is_refused_and_left_as_it_was(meme, tmp_path, capsys):
    results = tmp_path / "results.csv"  # a Parquet --out name that is the user's file
    results.write_text("a,b\n")
    assert score(meme, "--out", results) == 2
    assert results.read_text() == "a,b\n" and sorted(p.name for p in tmp_path.iterdir()) == [
        "results.csv"]
    assert "is a file" in capsys.readouterr().err
    tables = tmp_path / "tables"  # a folder of the user's own Parquet, not our output
    tables.mkdir()
    pq, pa = require("pyarrow.parquet"), require("pyarrow")
    pq.write_table(pa.table({"path": [str(meme)]}), tables / "paths.parquet")
    assert score(tables / "paths.parquet", "--out", tables) == 2
    assert [p.name for p in tables.iterdir()] == ["paths.parquet"]
    assert "not a simclip score output" in capsys.readouterr().err
    notes = tmp_path / "notes.jsonl"  # JSON lines of something else
    notes.write_text('{"note": 1}\n')
    assert score(meme, "--out", notes) == 2 and notes.read_text() == '{"note": 1}\n'


def test_an_unwritable_out_is_said_before_the_model_loads(meme, tmp_path, capsys, monkeypatch):
    import simclip_score.work as work

    monkeypatch.setattr(work.ScoreConfig, "load_predictor",
                        lambda *a, **k: pytest.fail("the model loaded before --out was checked"))
    (tmp_path / "a.png").write_bytes(b"x")
    assert score(meme, "--out", tmp_path / "a.png" / "x.jsonl") == 2
    assert "--out" in capsys.readouterr().err


def test_our_own_parquet_folder_resumes(meme, tmp_path):
    out = tmp_path / "scores"
    assert score(meme, "--out", out) == 0
    assert score(meme, "--out", out) == 0  # ours: resumed, nothing new
    assert len(read_rows(out)) == 1


def test_a_file_name_that_is_not_utf8_is_scored_under_an_escaped_id(meme, tmp_path):
    folder = tmp_path / "names"
    folder.mkdir()
    raw = os.path.join(os.fsencode(folder), b"caf\xe9.png")
    with open(raw, "wb") as f:
        f.write(meme.read_bytes())
    (folder / "plain.png").write_bytes(meme.read_bytes())
    for out in (tmp_path / "s.jsonl", tmp_path / "s-parquet"):
        if out.suffix != ".jsonl":
            require("pyarrow")
        assert score(folder, "--out", out) == 0
        rows = by_path(read_rows(out))
        assert set(rows) == {f"{folder}/caf\\xe9.png", f"{folder}/plain.png"}
        assert all(r["error"] is None for r in rows.values())
        assert score(folder, "--out", out) == 0 and len(read_rows(out)) == 2  # resumed


def test_relative_paths_in_lists_and_tables_are_taken_from_their_folder(corpus, tmp_path):
    memes = sorted(corpus.glob("covid*.png"))[:2]
    for name, m in zip("ab", memes):
        (tmp_path / name).mkdir()
        (tmp_path / name / "img.png").write_bytes(m.read_bytes())
        (tmp_path / name / "list.txt").write_text("img.png\n")
    with open(tmp_path / "a" / "table.csv", "w", newline="", encoding="utf-8-sig") as f:
        csv.writer(f).writerows([["path", "label"], ["img.png", "x"]])  # Excel's BOM
    out = tmp_path / "s.jsonl"
    assert score(tmp_path / "a" / "list.txt", tmp_path / "b" / "list.txt",
                 tmp_path / "a" / "table.csv", "--out", out) == 0
    rows = by_path(read_rows(out))
    assert set(rows) == {str(tmp_path / "a" / "img.png"), str(tmp_path / "b" / "img.png")}
    assert len({r["sha256"] for r in rows.values()}) == 2


def test_a_corrupt_or_truncated_shard_is_an_error_row_and_the_rest_is_scored(engine, meme,
                                                                              tmp_path):
    good = tmp_path / "good.tar"
    with tarfile.open(good, "w") as tar:
        tar.add(meme, arcname="0001/image.png")
        tar.add(meme, arcname="0002/image.png")
    cut = tmp_path / "cut.tar"
    cut.write_bytes(good.read_bytes()[:1200])  # the first member's header and some bytes
    (tmp_path / "empty.tar").write_bytes(b"")
    (tmp_path / "junk.tar").write_bytes(b"not a tar at all" * 40)
    out = tmp_path / "s.jsonl"
    assert score(good, cut, tmp_path / "empty.tar", tmp_path / "junk.tar", meme, "--out", out,
                 engine=engine) == 1
    rows = by_path(read_rows(out))
    assert rows[f"{good}/0001/image.png"]["error"] is None and rows[str(meme)]["error"] is None
    for shard in ("empty.tar", "junk.tar"):
        assert rows[str(tmp_path / shard)]["error"] == "unreadable_file"
    assert rows[str(cut)]["error"] == "unreadable_file" or any(
        r["error"] for p, r in rows.items() if p.startswith(str(cut)))


def test_a_glob_does_not_follow_symlinked_folders_and_a_folder_lists_dangling_links(
        engine, meme, tmp_path):
    root = tmp_path / "c"
    (root / "sub").mkdir(parents=True)
    (root / "sub" / "x.png").write_bytes(meme.read_bytes())
    os.symlink("..", root / "sub" / "up")  # a loop to the parent
    os.symlink(".", root / "self")  # and to itself
    os.symlink(root / "missing.png", root / "gone.png")  # dangling
    matches = [i.id for i in iter_items([f"{root}/**/*.png"])]
    assert matches == [str(root / "gone.png"), str(root / "sub" / "x.png")]
    out = tmp_path / "s.jsonl"
    assert score(root, "--out", out, engine=engine) == 1
    rows = by_path(read_rows(out))
    assert set(rows) == {str(root / "gone.png"), str(root / "sub" / "x.png")}
    assert rows[str(root / "gone.png")]["error"] == "unreadable_file"
    glob_out = tmp_path / "g.jsonl"
    assert score(f"{root}/**/*.png", "--out", glob_out, engine=engine) == 1
    assert set(by_path(read_rows(glob_out))) == set(matches)


def test_hugging_face_image_columns_give_their_bytes(meme, tmp_path):
    pa, pq = require("pyarrow"), require("pyarrow.parquet")
    image = pa.struct([("bytes", pa.binary()), ("path", pa.string())])
    table = pa.table({"image": pa.array([{"bytes": meme.read_bytes(), "path": "a.png"},
                                         {"bytes": None, "path": str(meme)}], image)})
    pq.write_table(table, tmp_path / "hf.parquet")
    out = tmp_path / "s.jsonl"
    assert score(tmp_path / "hf.parquet", "--out", out) == 0
    rows = read_rows(out)
    assert len(rows) == 2 and all(r["error"] is None for r in rows)
    assert len({r["sha256"] for r in rows}) == 1 and all(len(r["path"]) < 300 for r in rows)


def test_a_hugging_face_image_cell_with_empty_bytes_is_its_rows_empty_image(meme, tmp_path):
    """Bytes win over the path as in Hugging Face's Image feature, even empty ones: the row is
    the table's (hf.parquet#0, empty_image), not the file its path names."""
    pa, pq = require("pyarrow"), require("pyarrow.parquet")
    image = pa.struct([("bytes", pa.binary()), ("path", pa.string())])
    pq.write_table(pa.table({"image": pa.array([{"bytes": b"", "path": str(meme)}], image)}), tmp_path / "hf.parquet")
    out = tmp_path / "s.jsonl"
    assert score(tmp_path / "hf.parquet", "--out", out) == 1
    assert [(r["path"], r["error"]) for r in read_rows(out)] == [(f"{tmp_path / 'hf.parquet'}#0", "empty_image")]


def test_a_null_or_empty_cell_is_an_empty_image_row_that_says_which(meme, tmp_path):
    """A null Image struct, a null binary cell, an empty path and an empty CSV cell hold no
    picture: each is its row's empty_image, and the message says null or empty, not "0 bytes"
    (that is for a cell whose bytes are empty)."""
    pa, pq = require("pyarrow"), require("pyarrow.parquet")
    image = pa.struct([("bytes", pa.binary()), ("path", pa.string())])
    cells = [{"bytes": None, "path": None}, None, {"bytes": None, "path": " "}, {"bytes": b"", "path": None}]
    pq.write_table(pa.table({"image": pa.array(cells, image)}), tmp_path / "hf.parquet")
    pq.write_table(pa.table({"image": pa.array([None, meme.read_bytes()], pa.binary())}), tmp_path / "b.parquet")
    (tmp_path / "l.csv").write_text(f"path\n\n{meme}\n")
    out = tmp_path / "s.jsonl"
    assert score(tmp_path / "hf.parquet", tmp_path / "b.parquet", tmp_path / "l.csv", "--out", out) == 1
    rows = {r["path"].rsplit("/", 1)[-1]: r for r in read_rows(out)}
    said = {k: (r["error"], r["error_message"].split(": ", 1)[-1]) for k, r in rows.items() if r["error"]}
    assert said == {
        "hf.parquet#0": ("empty_image", "the cell is null: no picture"),
        "hf.parquet#1": ("empty_image", "the cell is null: no picture"),
        "hf.parquet#2": ("empty_image", "the cell is empty: no picture"),
        "hf.parquet#3": ("empty_image", "the image is empty (0 bytes)"),
        "b.parquet#0": ("empty_image", "the cell is null: no picture"),
        "l.csv#0": ("empty_image", "the cell is empty: no picture"),
    }, said
    assert rows["b.parquet#1"]["error"] is None and rows[meme.name]["error"] is None


class _Cut(http.server.BaseHTTPRequestHandler):
    """/cut.png: says the whole length, sends 60% and closes; /with space.png: the meme."""

    body = b""

    def do_GET(self):  # noqa: N802 (http.server's name)
        if self.path.startswith("/with%20space"):
            self.send_response(200)
            self.send_header("Content-Length", str(len(self.body)))
            self.end_headers()
            self.wfile.write(self.body)
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body[: len(self.body) * 6 // 10])
        self.close_connection = True

    def log_message(self, *args):
        pass


def test_urls_partial_bodies_spaces_and_bad_ports(engine, meme, tmp_path):
    _Cut.body = meme.read_bytes()
    with serve_loopback(_Cut) as base:
        listing = tmp_path / "urls.txt"
        listing.write_text(f"{base}/cut.png\n{base}/with space.png\nhttp://127.0.0.1:abc/x.png\n")
        out = tmp_path / "s.jsonl"
        assert score(listing, "--out", out, engine=engine) == 1
    rows = by_path(read_rows(out))
    assert rows[f"{base}/cut.png"]["error"] == "fetch_failed"  # never scored from 60% of it
    assert "closed after" in rows[f"{base}/cut.png"]["error_message"]
    assert rows[f"{base}/with space.png"]["error"] is None  # sent as with%20space, as browsers do
    assert rows["http://127.0.0.1:abc/x.png"]["error"] == "fetch_failed"


@pytest.mark.parametrize("option", ["--batch-size=0", "--workers=-1", "--max-wait-ms=-5",
                                    "--ray-cpu-batch=0"])
def test_impossible_options_are_refused_by_the_parser(meme, tmp_path, option):
    with pytest.raises(SystemExit) as e:
        score(meme, "--out", tmp_path / "s.jsonl", option)
    assert e.value.code == 2 and not (tmp_path / "s.jsonl").exists()


@pytest.mark.parametrize("suffix", [".jsonl", "-parquet"])
def test_retry_errors_scores_the_errors_of_the_moment_again_and_keeps_every_other_row(
        engine, corpus, tmp_path, suffix):
    if suffix != ".jsonl":
        require("pyarrow")
    later = tmp_path / "later.png"  # not there in the first run: unreadable_file
    listing = tmp_path / "list.txt"
    listing.write_text(f"{later}\n")
    out = tmp_path / f"s{suffix}"
    assert score(corpus, listing, "--out", out, engine=engine) == 1
    first = by_path(read_rows(out))
    assert first[str(later)]["error"] == "unreadable_file"
    assert len(first) == len(list(corpus.iterdir())) + 1
    later.write_bytes(sorted(corpus.glob("covid*.png"))[1].read_bytes())
    assert score(corpus, listing, "--out", out, engine=engine) == 0  # a plain rerun keeps the error row
    assert by_path(read_rows(out))[str(later)]["error"] == "unreadable_file"
    assert score(corpus, listing, "--out", out, "--retry-errors", engine=engine) == 0
    rows = read_rows(out)
    assert len(rows) == len(first) and by_path(rows)[str(later)]["error"] is None
    again = by_path(rows)  # the image's own errors stay, as they were
    assert again[str(corpus / "cut.png")] == first[str(corpus / "cut.png")]
    assert score(corpus, "--out", out, "--retry-errors", "--retry-codes", "not_a_code", engine=engine) == 2
    assert score(corpus, "--out", out, "--retry-errors", "--retry-codes", "bad_checkpoint", engine=engine) == 2


def test_compressed_shards_are_shards_and_a_broken_table_is_named(meme, tmp_path, capsys):
    shard = tmp_path / "shard-000.tar.gz"
    with tarfile.open(shard, "w:gz") as tar:
        tar.add(meme, arcname="0001/image.png")
    out = tmp_path / "s.jsonl"
    assert score(shard, "--out", out) == 0
    (row,) = read_rows(out)
    assert row["path"] == f"{shard}/0001/image.png" and row["error"] is None
    require("pyarrow")
    (tmp_path / "broken.parquet").write_bytes(b"PAR1")
    assert score(tmp_path / "broken.parquet", "--out", tmp_path / "t.jsonl") == 2
    assert "broken.parquet: cannot read the table" in capsys.readouterr().err


def test_retry_errors_touches_only_this_runs_inputs(corpus, tmp_path):
    """An --out shared by runs over several shards keeps the other shards' error rows."""
    gone = tmp_path / "gone.png"
    listing = tmp_path / "list.txt"
    listing.write_text(f"{gone}\n")
    out = tmp_path / "s.jsonl"
    assert score(listing, "--out", out) == 1
    assert score(corpus, "--out", out, "--retry-errors") == 1  # another shard
    rows = by_path(read_rows(out))
    assert rows[str(gone)]["error"] == "unreadable_file"  # still there, not "retried"


def test_a_second_run_on_the_same_out_is_refused_while_the_first_holds_it(meme, tmp_path, capsys):
    from filelock import FileLock

    from simclip_score.cli import _lock_path

    for out in (tmp_path / "s.jsonl", tmp_path / "s-parquet"):
        if out.suffix != ".jsonl":
            require("pyarrow")
            out.mkdir()
        with FileLock(str(_lock_path(str(out)))):  # another process's run, as far as we know
            assert score(meme, "--out", out) == 2
        assert "another simclip score is writing to" in capsys.readouterr().err
        assert score(meme, "--out", out) == 0  # free again


def test_a_terminated_run_keeps_its_parquet_rows(corpus, tmp_path, monkeypatch):
    """SIGTERM (kill, an eviction, timeout) stops a run as Ctrl-C does: the buffered Parquet
    rows are written, the exit status is 143."""
    require("pyarrow")
    from simclip_score import cli, local

    real_run = local.LocalEngine.run

    def run_then_killed(self, items):
        real_run(self, list(items)[:3])
        cli._on_sigterm(15, None)  # what the SIGTERM handler does in the main thread

    monkeypatch.setattr(local.LocalEngine, "run", run_then_killed)
    out = tmp_path / "s"
    assert score(corpus, "--out", out) == 143
    assert len(read_rows(out)) == 3
    monkeypatch.setattr(local.LocalEngine, "run", real_run)
    assert score(corpus, "--out", out) == 1
    rows = read_rows(out)
    assert len(rows) == len({r["path"] for r in rows}) == len(list(corpus.iterdir()))


def test_parquet_parts_are_written_once_a_minute_too(tmp_path, monkeypatch):
    require("pyarrow")
    from simclip_score import output

    writer = output.ParquetPartWriter(tmp_path / "p", ["harmful"])
    row = output.error_row("x", None, "fetch_failed", "m", "model", "id")
    writer.write([row])
    assert not list((tmp_path / "p").glob("*.parquet"))  # buffered
    monkeypatch.setattr(output, "PART_SECONDS", 0.0)
    writer.write([{**row, "path": "y"}])
    assert len(output.read_rows(tmp_path / "p")) == 2  # a minute passed: both written


def test_paths_are_ids_in_one_spelling(meme, tmp_path, monkeypatch):
    """'./x.png' and 'sub/../x.png' are 'x.png': a rerun spelling a path otherwise resumes."""
    monkeypatch.chdir(meme.parent)
    (tmp_path / "sub").mkdir()
    listing = tmp_path / "sub" / "list.txt"
    listing.write_text("../sub/../x.png\n")
    ids = [i.id for i in iter_items([f"./{meme.name}", str(listing)])]
    assert ids == [meme.name, str(tmp_path / "x.png")]


def test_folders_and_shards_give_ids_in_one_spelling(meme, tmp_path, monkeypatch):
    """A folder or a shard spelled './d/' or 'd/../d' gives the ids 'd' gives: a rerun resumes
    instead of scoring the folder again under another spelling."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "x.png").write_bytes(meme.read_bytes())
    with tarfile.open(tmp_path / "s.tar", "w") as tar:
        tar.add(meme, arcname="x.png")
    spellings = ["d", "./d/", "d/../d", "s.tar", "./s.tar", "d/../s.tar"]
    assert [i.id for i in iter_items(spellings)] == ["d/x.png"] * 3 + ["s.tar/x.png"] * 3
    out = tmp_path / "out.jsonl"
    assert score("d", "--out", out) == 0
    assert score("./d/", "--out", out) == 0
    assert [r["path"] for r in read_rows(out)] == ["d/x.png"]


@pytest.mark.parametrize("out", ["rows.jsonl", "rows"])
def test_a_run_refused_after_out_was_checked_leaves_no_out_behind(meme, tmp_path, capsys, out):
    """--out and its lock are made before the model loads (an unwritable place is said at once);
    a run refused then (a model with no published weights) removes the empty --out it made."""
    if out == "rows":
        require("pyarrow")
    argv = [str(meme), "--out", str(tmp_path / out), "--model", "simclip-tiny", "--ocr", "none", "--no-progress"]
    assert score_cli.main(argv) == 2
    assert "no published weights" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # neither --out nor its lock


def test_an_out_that_was_there_before_is_kept_when_the_run_is_refused(meme, tmp_path):
    out = tmp_path / "mine.jsonl"
    out.write_text("")
    argv = [str(meme), "--out", str(out), "--model", "simclip-tiny", "--ocr", "none", "--no-progress"]
    assert score_cli.main(argv) == 2
    assert out.exists()
    assert score(meme, "--out", out) == 0
    assert [r["path"] for r in read_rows(out)] == [str(meme)]


def test_out_dash_is_refused(meme, capsys):
    assert score(meme, "--out", "-") == 2
    assert "not to standard output" in capsys.readouterr().err


@pytest.mark.parametrize("where", ["reading the inputs", "waiting for the last ones"])
def test_ctrl_c_stops_at_once_and_leaves_what_is_not_written_for_the_rerun(harmeme_val_dir, monkeypatch,
                                                                            where):
    """Ctrl-C stops at once, whether it comes while inputs are still being queued or once all of
    them are (a run of 80 inputs or fewer, the end of any run): the queued ones are dropped, the
    reads under way end and nothing waits for the encoder (waiting for the queue would take as
    long as a rerun)."""
    import time

    from simclip_score import local
    from simclip_score.work import ScoreConfig

    config = ScoreConfig(model="simclip-tiny", pretrained="none", device="cpu", ocr="none", workers=2)
    started, rows = [], []
    real = local.LocalEngine._prepare

    def slow(self, item):
        started.append(item.id)
        time.sleep(0.2)  # OCR
        real(self, item)

    def inputs(n, interrupt):
        for i, item in enumerate(iter_items([str(harmeme_val_dir / "images")])):
            if i == n:
                if interrupt:
                    raise KeyboardInterrupt  # what SIGINT raises in the main thread
                return
            yield item

    def interrupted_wait(futures):
        time.sleep(0.05)
        raise KeyboardInterrupt

    monkeypatch.setattr(local.LocalEngine, "_prepare", slow)
    if where == "waiting for the last ones":
        monkeypatch.setattr(local, "wait", interrupted_wait)
    engine = local.LocalEngine(config.load_predictor(), config, rows.extend)
    with pytest.raises(KeyboardInterrupt):
        engine.run(inputs(40, interrupt=where == "reading the inputs"))
    time.sleep(1.0)  # nothing goes on reading after the run has returned
    assert 1 <= len(started) <= 4, len(started)  # the ones the 2 workers had begun, not all 40
    assert {r["path"] for r in rows} <= set(started)
    assert all(r["error"] is None for r in rows)


def test_an_svg_meme_in_a_folder_is_scored_and_a_vector_svg_skipped(meme, tmp_path, capsys):
    """`simclip score` takes an SVG as the server does (the picture it embeds); an SVG that
    embeds none (an icon, a logo) is not an input, as a .txt is not."""
    import base64

    folder = tmp_path / "svgs"
    folder.mkdir()
    uri = "data:image/png;base64," + base64.b64encode(meme.read_bytes()).decode()
    assert len(uri) > 64 * 1024  # the sniff sees only the start of the picture's data
    ns = 'xmlns="http://www.w3.org/2000/svg"'
    (folder / "meme.svg").write_text(f'<svg {ns} width="9" height="9"><image href="{uri}"/></svg>')
    (folder / "logo.svg").write_text(f'<svg {ns}><circle r="4"/></svg>')
    out = tmp_path / "s.jsonl"
    assert score(folder, "--out", out) == 0
    rows = read_rows(out)
    assert [(os.path.basename(r["path"]), r["error"]) for r in rows] == [("meme.svg", None)]
    plain = tmp_path / "plain.jsonl"
    assert score(meme, "--out", plain) == 0
    assert rows[0]["scores"] == read_rows(plain)[0]["scores"]  # judged as the meme itself
    assert "not an image (content)" in capsys.readouterr().out
