"""The public API of simclip (the names in `simclip.__all__`) is documented and fully typed.

Every exported function and class has a docstring, and so has every public method and property
an exported class defines; every parameter (but self/cls, *args and **kwargs) and every return
is annotated, and the annotations resolve. A new public function without hints fails here.
"""

import ast
import inspect
import subprocess
import sys
import typing
from pathlib import Path

import pytest

import simclip

PACKAGE = Path(simclip.__file__).parent

# Names some modules import only under TYPE_CHECKING (to stay light) resolve from the public API.
PUBLIC_NAMESPACE = {name: getattr(simclip, name) for name in simclip.__all__}


def _public_callables():
    """(id, object) for every exported function and class and its own public members."""
    out = []
    for name in simclip.__all__:
        obj = getattr(simclip, name)
        if inspect.isfunction(obj):
            out.append((name, obj))
        elif inspect.isclass(obj):
            out.append((name, obj))
            for attr, member in vars(obj).items():
                if attr.startswith("_") and attr != "__init__":
                    continue
                if isinstance(member, (staticmethod, classmethod)):
                    member = member.__func__
                if isinstance(member, property) or inspect.isfunction(member):
                    out.append((f"{name}.{attr}", member))
    return out


PUBLIC = _public_callables()


def test_the_public_api_has_the_entry_points_this_test_is_about():
    ids = {i for i, _ in PUBLIC}
    for expected in ("load_classifier", "Predictor.predict", "Predictor.embed", "Predictor.device",
                     "Backbone.encode_images", "Backbone.encode_texts", "load_backbone",
                     "SimCLIPHead.forward", "decode_image", "get_ocr_engine"):
        assert expected in ids


@pytest.mark.parametrize("obj", [o for _, o in PUBLIC], ids=[i for i, _ in PUBLIC])
def test_every_public_function_class_and_method_has_a_docstring(obj):
    if isinstance(obj, property):
        obj = obj.fget
    elif getattr(obj, "__name__", "") == "__init__":
        return  # documented by its class
    doc = obj.__doc__ or ""
    if inspect.isclass(obj):  # a dataclass without a docstring gets its signature as one
        assert not doc.startswith(f"{obj.__name__}("), f"{obj.__name__} has no docstring"
    assert doc.strip(), f"{obj.__qualname__} has no docstring"


def _signatures(obj):
    """The functions whose annotations make up `obj`'s typed interface."""
    if isinstance(obj, property):
        return [obj.fget]
    if inspect.isclass(obj):
        return []  # its __init__ and methods are listed separately
    return [obj]


@pytest.mark.parametrize("obj", [o for _, o in PUBLIC], ids=[i for i, _ in PUBLIC])
def test_every_public_function_and_method_is_fully_annotated(obj):
    for fn in _signatures(obj):
        sig = inspect.signature(fn)
        for i, (pname, param) in enumerate(sig.parameters.items()):
            if i == 0 and pname in ("self", "cls"):
                continue
            if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
                continue
            assert param.annotation is not param.empty, \
                f"{fn.__qualname__}: parameter {pname!r} has no type hint"
        assert sig.return_annotation is not sig.empty, f"{fn.__qualname__}: no return type hint"
        # the hints are valid expressions naming real types, not typos
        hints = typing.get_type_hints(fn, localns=PUBLIC_NAMESPACE)
        assert "return" in hints


def test_the_type_checking_imports_of_the_package_match_its_lazy_exports():
    """`simclip/__init__.py` tells type checkers each export's module; it must agree with
    `_EXPORTS`, which the lazy `__getattr__` uses at runtime."""
    tree = ast.parse((PACKAGE / "__init__.py").read_text())
    block = next(node for node in tree.body if isinstance(node, ast.If)
                 and "TYPE_CHECKING" in ast.unparse(node.test))
    declared = {}
    for node in block.body:
        assert isinstance(node, ast.ImportFrom) and node.level == 1, ast.unparse(node)
        for alias in node.names:
            assert alias.asname == alias.name, f"{alias.name}: re-export it as itself"
            declared[alias.name] = node.module
    assert declared == simclip._EXPORTS


def test_the_package_says_it_is_typed():
    assert (PACKAGE / "py.typed").is_file()


def test_importing_the_package_and_its_light_names_loads_no_model_library():
    probe = ("import sys, simclip\n"
             "from simclip import SimCLIPError, ImageError, DEFAULT_PORT, WARNING_CATEGORIES\n"
             "print(' '.join(m for m in ('torch', 'open_clip', 'PIL') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", probe], check=True, capture_output=True, text=True)
    assert out.stdout.strip() == ""
