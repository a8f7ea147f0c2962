"""The `simclip` command: `simclip <command> [args]`, each command a module with `main(argv)`."""

import argparse
import importlib
import json
import logging
import signal
import sys
import threading

from .options import ClassifierOptions, random_weights_warning

# command -> (module, one-line help). Modules load lazily so `simclip predict` never imports
# the training package, and each module keeps its own `parse_args`/`main(argv)` for tests.
COMMANDS = {
    "predict": ("simclip.cli", "classify meme images and print JSON"),
    "embed": ("simclip_train.embed", "cache frozen-encoder embeddings of a dataset"),
    "train": ("simclip_train.train", "train a SimCLIP head on cached embeddings"),
    "evaluate": ("simclip_train.evaluate", "evaluate a trained head on a dataset split"),
    "calibrate": ("simclip_train.calibrate", "fit the zero-shot scores on labelled validation memes"),
    "datasets": ("simclip_train.download", "fetch public meme datasets / show how to get the others"),
    "quickstart": ("simclip_train.quickstart", "fetch Harm-C, train the harmful head, print the server line"),
    "score": ("simclip_score.cli", "score a corpus of memes to Parquet/JSONL, locally or on Ray"),
    "setup": ("simclip_train.setup", "ask the running server to set up protection: fetch, train, serve the head"),
}
TRAIN_EXTRA = "train"  # the pyproject extra that the simclip_train commands need


def parse_predict_args(argv):
    """Arguments of `simclip predict`."""
    p = argparse.ArgumentParser(prog="simclip predict", description=COMMANDS["predict"][1])
    p.add_argument("images", nargs="+", help="image files")
    p.add_argument("--checkpoint", default=None, help="trained head (zero-shot without one)")
    ClassifierOptions.add_arguments(p)
    return p.parse_args(argv)


def predict_main(argv=None):
    """`simclip predict IMAGE...`: one JSON object per image, as a JSON list on stdout."""
    from . import ImageError, SimCLIPError, load_classifier

    args = parse_predict_args(argv)
    try:
        predictor = load_classifier(args.checkpoint,
                                    **ClassifierOptions.from_args(args).classifier_kwargs())
    except (SimCLIPError, ValueError, RuntimeError) as e:
        print(f"simclip predict: {e}", file=sys.stderr)
        return 2
    out, failed = [], 0
    for path in args.images:
        try:
            with open(path, "rb") as f:
                data = f.read()
            result = predictor.predict([data])[0]
            out.append({"image": path, **result})
        except (ImageError, OSError) as e:
            failed += 1
            code = getattr(e, "code", "unreadable_file")
            out.append({"image": path, "error": {"code": code, "message": str(e)}})
    json.dump(out, sys.stdout, indent=2, ensure_ascii=False)
    print()
    warning = random_weights_warning(predictor.backbone.info.id)
    if warning:
        print(warning, file=sys.stderr)
    return 1 if failed else 0


def main(argv=None):
    """Entry point of the `simclip` console script."""
    console = argv is None  # the console script (tests pass argv and keep their Ctrl-C)
    argv = list(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    if argv and argv[0] in ("-V", "--version"):
        from . import __version__

        print(f"simclip {__version__}")
        return 0
    if not argv or argv[0] in ("-h", "--help") or argv[0] not in COMMANDS:
        width = max(map(len, COMMANDS))
        lines = [f"  {name:<{width}}  {help_}" for name, (_, help_) in COMMANDS.items()]
        usage = ("usage: simclip <command> [args]   (simclip --version)\n\ncommands:\n"
                 + "\n".join(lines))
        if argv and argv[0] not in ("-h", "--help"):
            print(f"simclip: unknown command {argv[0]!r}\n\n{usage}", file=sys.stderr)
            return 2
        print(usage)
        return 0
    name, rest = argv[0], argv[1:]
    try:
        return _run_command(name, rest)
    except KeyboardInterrupt:  # Ctrl-C before a command's own handling (its imports): no traceback
        print(f"\nsimclip {name}: interrupted", file=sys.stderr)
        return 130
    finally:
        if console and threading.current_thread() is threading.main_thread():
            # The command is done; what is left is the interpreter's exit, about 1.3 s with
            # torch and onnxruntime loaded. A Ctrl-C there (a user's second, after a first one
            # stopped a run) would abort the process under native threads (exit 134).
            signal.signal(signal.SIGINT, signal.SIG_IGN)


def _run_command(name, rest):
    if name == "predict":
        return predict_main(rest)
    try:
        module = importlib.import_module(COMMANDS[name][0])
    except ModuleNotFoundError as e:
        if e.name and e.name.split(".")[0] in ("simclip", "torch"):
            raise  # a broken install of simclip itself, not a missing extra
        print(f"simclip {name}: needs the '{TRAIN_EXTRA}' extra ({e.name} is not installed): "
              f"pip install 'simclip[{TRAIN_EXTRA}]'", file=sys.stderr)
        return 2
    return module.main(rest)


if __name__ == "__main__":
    sys.exit(main())
