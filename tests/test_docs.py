"""The docs' commands exist: every `simclip <command>`, `simclip-server`, `python -m ...` and
`bench/` script that the README (and docs/install.md, docs/reproduce.md) names, and every
`--flag` they give it, is accepted by the real argparse parser of that command. Nothing is run:
a command's `parse_args` only builds its parser and parses the words."""

import argparse
import contextlib
import importlib
import re
import shlex
from pathlib import Path

import pytest

from simclip import cli

REPO = Path(__file__).resolve().parents[1]
DOCS = [REPO / "README.md", REPO / "docs" / "install.md", REPO / "docs" / "reproduce.md"]
# The project's shell scripts: their options are the `--name)` arms of their `case`.
SCRIPTS = {"install.sh": REPO / "install.sh", "bench/gpu_check.sh": REPO / "bench" / "gpu_check.sh"}
OUR_PACKAGES = ("simclip", "simclip_train", "simclip_score", "backend", "bench")
# Other programs' options that the docs name on their own, outside a command line.
OTHER_PROGRAMS = {"--without-pip": "python -m venv"}


class _Built(Exception):
    """Raised in place of parsing once a command's parser is built."""


def find_parser(words):
    """(name, parse_args or None, the words after the command) for a command line of ours, or
    None for another program's (pip, npm, ray, pytest). AssertionError for a command of ours
    that does not exist."""
    if not words:
        return None
    head, rest = words[0].removeprefix(".venv/bin/"), words[1:]
    if head == "simclip":
        if not rest or rest[0].startswith("-"):  # `simclip --version`, `simclip --help`
            return "simclip", None, rest
        command, rest = rest[0], rest[1:]
        assert command in cli.COMMANDS, f"simclip {command}: no such command ({sorted(cli.COMMANDS)})"
        if command == "predict":
            return "simclip predict", cli.parse_predict_args, rest
        return f"simclip {command}", importlib.import_module(cli.COMMANDS[command][0]).parse_args, rest
    if head == "simclip-server":
        return head, importlib.import_module("backend.serve").parse_args, rest
    if head in ("python", "python3") and rest[:1] == ["-m"] and len(rest) > 1:
        if rest[1].split(".")[0] not in OUR_PACKAGES:
            return None  # pytest, pip, venv
        return _module_parser(rest[1], rest[2:])
    if head in ("python", "python3") and rest and rest[0].startswith("bench/"):
        return _module_parser(rest[0].removesuffix(".py").replace("/", "."), rest[1:])
    return None


def _module_parser(module, rest):
    assert importlib.util.find_spec(module) is not None, f"python -m {module}: no such module"
    return f"python -m {module}", getattr(importlib.import_module(module), "parse_args", None), rest


def options_of(parse_args):
    """The option strings of the parser `parse_args` builds, its subcommands' included."""
    parsers = []

    def capture(self, args=None, namespace=None):
        parsers.append(self)
        raise _Built

    with pytest.MonkeyPatch.context() as mp, contextlib.suppress(_Built):
        mp.setattr(argparse.ArgumentParser, "parse_args", capture)
        parse_args([])
    options = set()
    while parsers:
        parser = parsers.pop()
        for action in parser._actions:
            options.update(action.option_strings)
            if isinstance(action, argparse._SubParsersAction):
                parsers.extend(action.choices.values())
    return options


def script_options(name):
    text = SCRIPTS[name].read_text()
    return set(re.findall(r"(--[\w-]+)\)", text)) | set(re.findall(r'"(--[\w-]+)"', text))


def every_option():
    """Every option of every command of ours and of the project's scripts."""
    found = set(OTHER_PROGRAMS)
    for words in [["simclip", name] for name in cli.COMMANDS] + [["simclip-server"]]:
        found |= options_of(find_parser(words)[1])
    for name in SCRIPTS:
        found |= script_options(name)
    return found


def _flags(words):
    return {w.split("=")[0] for w in words if re.fullmatch(r"--[a-z][\w-]*(=.*)?", w)}


def _script(words):
    """The project script a `bash SCRIPT ...` line runs, or None."""
    if len(words) > 1 and words[0] in ("bash", "sh") and words[1] in SCRIPTS:
        return words[1]
    return None


def shell_commands(text):
    """The command lines of the text's ```bash blocks, each split into words (comments, `&&`,
    pipes and line continuations handled)."""
    for block in re.findall(r"^```(?:bash|sh|console)\n(.*?)^```", text, re.M | re.S):
        for line in block.replace("\\\n", " ").splitlines():
            for command in re.split(r"&&|\|\||;|\|", line):
                words = shlex.split(command, comments=True)
                if words:
                    yield words


def code_block_errors(text):
    """(errors, commands checked) for the command lines of the text's code blocks."""
    errors, checked = [], 0
    for words in shell_commands(text):
        line = shlex.join(words)
        script = _script(words)
        if script:
            errors += [f"`{line}`: {script} has no {f}" for f in sorted(_flags(words) - script_options(script))]
            checked += 1
            continue
        try:
            found = find_parser(words)
        except AssertionError as e:
            errors.append(f"`{line}`: {e}")
            continue
        if found is None or found[1] is None:
            continue
        name, parse_args, rest = found
        try:
            parse_args(rest)
        except SystemExit:
            errors.append(f"`{line}` is refused by {name}'s parser (its message is above)")
        # argparse also takes a prefix of a flag: the docs spell each one out
        errors += [f"`{line}`: {name} has no {f}" for f in sorted(_flags(rest) - options_of(parse_args))]
        checked += 1
    return errors, checked


def _inline_spans(text):
    """The inline `code` spans outside the fenced blocks."""
    prose = re.sub(r"^```.*?^```", "", text, flags=re.M | re.S)
    return re.findall(r"`([^`\n]+)`", prose)


def _span_commands(span):
    """A span's words, one list per alternative of `simclip a/b/c`."""
    try:
        words = shlex.split(span)
    except ValueError:  # an apostrophe in a span of prose
        words = span.split()
    if len(words) > 1 and words[0].removeprefix(".venv/bin/") == "simclip" and "/" in words[1]:
        return [[words[0], name, *words[2:]] for name in words[1].split("/") if name]
    return [words]


def inline_errors(text, known_anywhere):
    """Errors in the text's inline spans: a span that starts with one of our commands names a
    real command and its real flags; a bare flag is an option of some command of ours."""
    errors = []
    for span in _inline_spans(text):
        for words in _span_commands(span):
            try:
                found = find_parser(words)
            except AssertionError as e:
                errors.append(f"`{span}`: {e}")
                continue
            flags = {f.split("=")[0] for f in re.findall(r"(?<![\w-])--[a-z][\w-]*", span)}
            if not flags:
                continue
            if found is not None and found[1] is not None:
                known, where = options_of(found[1]), found[0]
            elif _script(words):
                known, where = script_options(_script(words)), _script(words)
            elif found is not None or not words[0].startswith("-"):
                continue  # `simclip --version`, a script without options, another program's span
            else:
                known, where = known_anywhere, "any command"
            errors += [f"`{span}`: {flag} is not an option of {where}" for flag in sorted(flags - known)]
    return errors


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_every_command_line_in_the_docs_code_blocks_is_accepted_by_its_parser(doc):
    errors, checked = code_block_errors(doc.read_text())
    assert not errors, "\n".join(errors)
    assert checked, f"no command of ours found in {doc.name}'s code blocks"


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_every_command_and_flag_the_docs_name_in_their_text_exists(doc):
    errors = inline_errors(doc.read_text(), every_option())
    assert not errors, "\n".join(errors)


def test_the_checks_find_a_wrong_command_a_wrong_flag_and_an_abbreviated_one():
    text = """```bash
simclip serve --port 1
simclip train --dataset mami --data-dir d --out x --epochz 3   # no such flag
simclip train --dataset mami --data-dir d --out x --epoch 3    # argparse's prefix of --epochs
bash install.sh --gpu
simclip-server --port 8478 && python -m bench.no_such_bench
```
Use `simclip embed/trian`, `simclip score --ray-adress auto`, or `--no-such-flag`.
"""
    errors, checked = code_block_errors(text)
    assert len(errors) == 6 and checked == 4, errors
    assert "simclip serve: no such command" in errors[0]
    assert "`simclip train --dataset mami --data-dir d --out x --epochz 3` is refused" in errors[1]
    assert errors[2:4] == ["`simclip train --dataset mami --data-dir d --out x --epochz 3`: "
                           "simclip train has no --epochz",
                           "`simclip train --dataset mami --data-dir d --out x --epoch 3`: "
                           "simclip train has no --epoch"]
    assert errors[4] == "`bash install.sh --gpu`: install.sh has no --gpu"
    assert "python -m bench.no_such_bench: no such module" in errors[5]
    errors = inline_errors(text, every_option())
    assert len(errors) == 3, errors
    assert "simclip trian: no such command" in errors[0]
    assert errors[1:] == ["`simclip score --ray-adress auto`: --ray-adress is not an option of "
                          "simclip score",
                          "`--no-such-flag`: --no-such-flag is not an option of any command"]


def test_every_option_is_read_from_the_real_parsers():
    options = every_option()
    assert {"--status", "--cancel", "--dry-run", "--ray-address", "--print-token", "--force"} <= options
    assert "--no-such-flag" not in options


@pytest.mark.parametrize(("command", "argv", "default"), [
    ("embed", ["harmeme-c", "--data-dir", "d"], "dataset"),
    ("train", ["--dataset", "harmeme-c", "--data-dir", "d", "--out", "h.safetensors"], "dataset"),
    ("calibrate", ["--dataset", "harmeme-c", "--data-dir", "d"], "ocr"),
])
def test_the_text_option_help_names_the_default_of_its_command(command, argv, default, capsys):
    """calibrate fits on OCR text, what the server scores; embed and train default to the
    datasets' transcriptions. Each command's --help says its own."""
    parse_args = find_parser(["simclip", command])[1]
    assert parse_args(argv).text == default
    with pytest.raises(SystemExit):
        parse_args(["--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert f"our OCR (what the server sees); default {default}" in help_text
