"""The package boundaries (CONTRIBUTING.md): the inference library loads no training, web or
benchmark code, and the training commands say which extra they need."""

import ast
import importlib
import re
import subprocess
import sys
from pathlib import Path

import pytest

from simclip import cli

REPO = Path(__file__).resolve().parents[1]
FORBIDDEN = ("simclip_train", "simclip_score", "bench", "flask", "flask_cors", "waitress", "backend", "ray")


def _modules_after(code):
    """The top-level module names loaded after running `code` in a fresh interpreter."""
    probe = (f"import sys\n{code}\n"
             "print('\\n'.join(sorted({m.split('.')[0] for m in sys.modules})))")
    out = subprocess.run([sys.executable, "-c", probe], check=True, capture_output=True, text=True)
    return set(out.stdout.split())


@pytest.mark.parametrize("code", [
    "import simclip",
    "from simclip import load_classifier",
    "from simclip import load_backbone",
    "import simclip; simclip.load_classifier(model='simclip-tiny', pretrained='none', "
    "device='cpu', ocr='none').predict([__import__('PIL.Image').Image.new('RGB', (32, 32))])",
])
def test_the_inference_library_imports_no_training_web_or_benchmark_module(code):
    loaded = _modules_after(f"import os; os.environ['HF_HUB_OFFLINE'] = '1'\n{code}")
    assert not set(FORBIDDEN) & loaded, sorted(set(FORBIDDEN) & loaded)


def test_the_server_imports_no_training_module():
    loaded = _modules_after("import backend, backend.serve, backend.api, backend.pipeline")
    assert "simclip_train" not in loaded


def test_a_training_command_without_the_train_extra_names_the_extra(monkeypatch, capsys):
    real_import = cli.importlib.import_module

    def without_numpy(name, *args):
        if name.startswith("simclip_train"):
            raise ModuleNotFoundError("No module named 'numpy'", name="numpy")
        return real_import(name, *args)

    monkeypatch.setattr(cli.importlib, "import_module", without_numpy)
    training = [name for name, (module, _) in cli.COMMANDS.items() if module.startswith("simclip_train.")]
    assert {"embed", "train", "evaluate", "calibrate", "datasets", "quickstart", "setup"} <= set(training)
    for command in training:
        assert cli.main([command, "--help"]) == 2
        err = capsys.readouterr().err
        assert f"simclip {command}: needs the 'train' extra (numpy is not installed)" in err
        assert "pip install 'simclip[train]'" in err


def test_every_command_is_listed_in_the_help_with_its_line_and_has_a_main(capsys):
    assert cli.main(["--help"]) == 0
    out = capsys.readouterr().out
    assert len(cli.COMMANDS) >= 9
    for command, (module, help_) in cli.COMMANDS.items():
        assert re.search(rf"^  {command} +{re.escape(help_)}$", out, re.M), command
        entry = cli.predict_main if command == "predict" else importlib.import_module(module).main
        assert callable(entry), f"simclip {command}: {module} has no main(argv)"


def test_tests_that_need_the_shared_data_skip_with_the_reason_when_it_is_absent(monkeypatch):
    import shared_data

    monkeypatch.setattr(shared_data, "REQUIRE_SHARED_DATA", False)
    with pytest.raises(pytest.skip.Exception, match="real data .*no-such-set/val.jsonl is absent"):
        shared_data.get_shared_data("no-such-set", "val.jsonl")
    monkeypatch.setattr(shared_data, "REQUIRE_SHARED_DATA", True)
    with pytest.raises(pytest.fail.Exception, match="SIMCLIP_REQUIRE_SHARED_DATA=1 requires them"):
        shared_data.get_shared_data("no-such-set", "val.jsonl")


def test_the_version_is_defined_once_and_every_artefact_carries_it():
    import json
    import tomllib

    import simclip

    repo = REPO
    project = tomllib.loads((repo / "pyproject.toml").read_text())["project"]
    assert "version" not in project and "version" in project["dynamic"]  # read from simclip
    for manifest in ("manifest.json", "package.json"):
        assert json.loads((repo / "extension" / manifest).read_text())["version"] == simclip.__version__
    released = re.findall(r"^## \[(\d+\.\d+\.\d+)\]", (repo / "CHANGELOG.md").read_text(), re.M)
    assert released[0] == simclip.__version__



def _imports(package):
    """(file, module, names) of every import statement in a package's Python files."""
    for path in sorted((REPO / package).rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.ImportFrom) and node.level == 0:
                yield path.name, node.module, [a.name for a in node.names]
            elif isinstance(node, ast.Import):
                for a in node.names:
                    yield path.name, a.name, []


def _simclip_modules_listed(package):
    """The simclip modules (`name`, backticked) that CONTRIBUTING's map lets `package` import
    public names of, besides the names `simclip` exports: read from its 'may import' cell."""
    table = (REPO / "CONTRIBUTING.md").read_text().split("## Layout", 1)[1].split("\n## ", 1)[0]
    row = next(line for line in table.splitlines() if line.startswith(f"| `{package}/` |"))
    modules = {p.stem for p in (REPO / "simclip").glob("*.py")} - {"__init__"}
    return set(re.findall(r"`(\w+)`", row.rstrip(" |").rsplit(" | ", 1)[1])) & modules


NEVER_IMPORTS = {"backend": ("simclip_train",), "simclip_train": ("backend", "simclip_score"),
                 "simclip_score": ("simclip_train",), "bench": ()}


@pytest.mark.parametrize("package", sorted(NEVER_IMPORTS))
def test_each_package_imports_simclip_names_the_map_allows(package):
    """An exported name comes from `simclip` itself; any other only from a simclip module the
    package's row of CONTRIBUTING's map lists, and never a private (`_`) name."""
    import simclip

    listed = _simclip_modules_listed(package)
    for file, module, names in _imports(package):
        where = f"{package}/{file}"
        assert module.split(".")[0] not in NEVER_IMPORTS[package], f"{where} imports {module}"
        if module.split(".")[0] != "simclip":
            continue
        if module == "simclip":  # exported names, or a listed module (`from simclip import errors`)
            others = set(names) - set(simclip.__all__) - {"__version__"}
            assert others <= listed, f"{where}: {sorted(others)} are not exported by simclip"
            continue
        assert module.removeprefix("simclip.") in listed, \
            f"{where} imports {module}: not among the modules CONTRIBUTING lists ({sorted(listed)})"
        for name in names:
            assert not name.startswith("_"), f"{where} imports the private {module}.{name}"
            assert name not in simclip.__all__, f"{where}: import {name} from simclip, not {module}"


def test_the_modules_of_simclip_import_no_private_name_of_one_another():
    for path in sorted((REPO / "simclip").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level == 1:
                private = [a.name for a in node.names
                           if a.name.startswith("_") and not a.name.endswith("__")]
                assert not private, f"simclip/{path.name} imports {private} from .{node.module}"


def test_the_inference_library_never_imports_the_training_side_or_the_server():
    for file, module, _ in _imports("simclip"):
        top = module.split(".")[0]
        assert top not in FORBIDDEN, f"simclip/{file} imports {module}"


def test_every_top_level_folder_is_in_the_contributing_map():
    tracked = subprocess.run(["git", "ls-files"], cwd=REPO, capture_output=True, text=True,
                             check=True).stdout.split()
    folders = {p.split("/")[0] for p in tracked if "/" in p and not p.startswith(".")}
    table = (REPO / "CONTRIBUTING.md").read_text().split("## Layout", 1)[1].split("\n## ", 1)[0]
    mapped = set(re.findall(r"^\| `([\w.-]+)/`", table, re.M))
    assert folders == mapped, f"in the tree only: {folders - mapped}; in the map only: {mapped - folders}"


def test_the_server_install_can_run_setup():
    """Issue 15: Set up protection runs simclip_train inside the server, so the server extra
    (what install.sh installs) brings the train extra's dependencies too."""
    import tomllib

    extras = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    assert "simclip[train]" in extras["server"]


def _layout_rows():
    """{folder: its row's 'what' cell} of CONTRIBUTING.md's layout table."""
    table = (REPO / "CONTRIBUTING.md").read_text().split("## Layout", 1)[1].split("\n## ", 1)[0]
    return {m[1]: m[2] for m in re.finditer(r"^\| `([\w.-]+)/` \| (.*?) \|", table, re.M)}


@pytest.mark.parametrize("package", ["simclip", "simclip_train", "simclip_score", "backend", "bench"])
def test_the_contributing_map_names_every_module_of_each_package_and_no_other(package):
    named = set(re.findall(r"`(\w+\.(?:py|sh))`", _layout_rows()[package]))
    present = {p.name for p in (REPO / package).iterdir() if p.suffix in (".py", ".sh")} - {"__init__.py"}
    assert present <= named | {"__init__.py"}, f"{package}/ modules missing from the map: {sorted(present - named)}"
    assert named - {"__init__.py"} <= present, f"the map names {sorted(named - present)}, not in {package}/"


def test_the_contributing_map_names_every_file_of_the_extensions_worker_and_content_scripts():
    named = set(re.findall(r"`(\w+\.(?:js|css))`", _layout_rows()["extension"]))
    present = {p.name for folder in ("background", "content")
               for p in (REPO / "extension" / folder).iterdir() if p.suffix in (".js", ".css")}
    assert present == named, f"in the tree only: {present - named}; in the map only: {named - present}"


def test_the_contributing_map_names_every_test_support_module():
    named = set(re.findall(r"`(\w+\.py)`", _layout_rows()["tests"]))
    support = {p.name for p in (REPO / "tests").glob("*.py") if not p.name.startswith("test_")}
    assert support == named, f"in tests/ only: {support - named}; in the map only: {named - support}"
