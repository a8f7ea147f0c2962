"""The package boundaries (CONTRIBUTING.md): the inference library loads no training, web or
benchmark code, and the training commands say which extra they need."""

import subprocess
import sys

import pytest

from simclip import cli

FORBIDDEN = ("simclip_train", "bench", "flask", "flask_cors", "waitress", "backend")


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
    for command in ("embed", "train", "evaluate", "datasets", "quickstart"):
        assert cli.main([command, "--help"]) == 2
        err = capsys.readouterr().err
        assert f"simclip {command}: needs the 'train' extra (numpy is not installed)" in err
        assert "pip install 'simclip[train]'" in err


def test_every_command_is_listed_in_the_help(capsys):
    assert cli.main(["--help"]) == 0
    out = capsys.readouterr().out
    for command in ("predict", "embed", "train", "evaluate", "datasets", "quickstart"):
        assert f"  {command}" in out


def test_tests_that_need_the_shared_data_skip_with_the_reason_when_it_is_absent(monkeypatch):
    import shared_data

    monkeypatch.setattr(shared_data, "REQUIRE_SHARED_DATA", False)
    with pytest.raises(pytest.skip.Exception, match="real data .*no-such-set/val.jsonl is absent"):
        shared_data.get_shared_data("no-such-set", "val.jsonl")
    monkeypatch.setattr(shared_data, "REQUIRE_SHARED_DATA", True)
    with pytest.raises(pytest.fail.Exception, match="SIMCLIP_REQUIRE_SHARED_DATA=1 requires them"):
        shared_data.get_shared_data("no-such-set", "val.jsonl")
