"""The public API's shape (as dm_pix/_src/api_test.py): what `import jaxdeblur` loads, options keyword-only,
documented functions, commands only in the CLI, and one call that clears every process-wide cache.

Nothing here compiles or runs a model: the file takes about a second.
"""

import ast
import functools
import importlib
import inspect
import subprocess
import sys
from pathlib import Path

import pytest

import jaxdeblur
from jaxdeblur import caches

PACKAGE = Path(__file__).resolve().parents[1] / "jaxdeblur"

# The modules whose __all__ is the public API this file checks.
PUBLIC_MODULES = ("jaxdeblur", "jaxdeblur.api", "jaxdeblur.forward", "jaxdeblur.metrics", "jaxdeblur.kernels",
                  "jaxdeblur.noise", "jaxdeblur.deconv", "jaxdeblur.color", "jaxdeblur.config", "jaxdeblur.io",
                  "jaxdeblur.restoration", "jaxdeblur.blur_transfer", "jaxdeblur.caches", "jaxdeblur.nets.platform")

# Parameters with a default that stay positional, and why (the rule: a parameter with a default is an option,
# and options are keyword-only).
POSITIONAL_OPTIONS = {
    # the method is the call's subject (`deblur(y, 31, "map")`, as the demo and the scripts call it), and
    # kernel_sizes is required unless kernel_shape= is given
    "deblur": {"method"},
    "deblur_batch": {"kernel_sizes", "method"},
    "plan_batch": {"kernel_sizes", "method"},
    # a range of weights, read positionally: beta_schedule(1.0, 256.0)
    "beta_schedule": {"beta_min", "beta_max", "rate"},
}


def _public_functions():
    seen = {}
    for module_name in PUBLIC_MODULES:
        module = importlib.import_module(module_name)
        for name in module.__all__:
            value = getattr(module, name)
            if inspect.isfunction(value) and value not in seen.values():
                seen[f"{module_name}.{name}"] = value
    return sorted(seen.items())


FUNCTIONS = _public_functions()


def test_import_jaxdeblur_loads_no_command_method_model_or_engine():
    code = ("import sys, jaxdeblur; print(' '.join(sorted(m for m in sys.modules if m.startswith(('jaxdeblur', "
            "'typer', 'click', 'flax', 'optax', 'orbax')))))")
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert loaded == ["jaxdeblur"], f"import jaxdeblur also loads {loaded}"


def test_top_level_names_resolve_on_first_use():
    assert set(jaxdeblur.__all__) <= set(dir(jaxdeblur))
    assert jaxdeblur.clear_caches is caches.clear_caches
    assert jaxdeblur.color.rgb_to_gray is importlib.import_module("jaxdeblur.color").rgb_to_gray  # a submodule
    with pytest.raises(AttributeError, match="no_such_name"):
        jaxdeblur.no_such_name  # noqa: B018


@functools.cache
def _nodes(path: Path) -> list[ast.AST]:
    return list(ast.walk(ast.parse(path.read_text())))


def _imports_of(path: Path) -> set[str]:
    names = set()
    for node in _nodes(path):
        if isinstance(node, ast.Import):
            names.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module.split(".")[0])
    return names


def test_typer_commands_live_in_the_cli_package_only():
    offenders = [str(p.relative_to(PACKAGE)) for p in PACKAGE.rglob("*.py")
                 if "cli" not in p.relative_to(PACKAGE).parts[:1] and ("typer" in (text := p.read_text())
                                                                       or "click" in text)
                 and _imports_of(p) & {"typer", "click"}]
    assert not offenders, f"library modules importing typer / click (move their commands to jaxdeblur/cli): {offenders}"


@pytest.mark.parametrize("name,function", FUNCTIONS, ids=[n for n, _ in FUNCTIONS])
def test_options_are_keyword_only(name, function):
    allowed = POSITIONAL_OPTIONS.get(function.__name__, set())
    positional = {p.name for p in inspect.signature(function).parameters.values()
                  if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) and p.default is not p.empty}
    assert positional <= allowed, f"{name}: options {sorted(positional - allowed)} should be keyword-only"


@pytest.mark.parametrize("name,function", FUNCTIONS, ids=[n for n, _ in FUNCTIONS])
def test_docstrings_have_args_and_returns(name, function):
    doc = inspect.getdoc(function) or ""
    assert doc, f"{name} has no docstring"
    parameters = [p for p in inspect.signature(function).parameters.values()
                  if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
    if parameters:
        assert "\nArgs:\n" in doc, f"{name}: no Args: section"
        documented = doc.split("\nArgs:\n", 1)[1]
        missing = [p.name for p in parameters if p.name not in documented]
        assert not missing, f"{name}: Args: does not name {missing}"
    assert "\nReturns:\n" in doc, f"{name}: no Returns: section"


def _cached_functions() -> set[tuple[str, str]]:
    """(module, function) of every function of the package decorated with functools.cache / lru_cache."""
    found = set()
    for path in PACKAGE.rglob("*.py"):
        if "cache" not in path.read_text():
            continue
        module = ".".join(("jaxdeblur",) + path.relative_to(PACKAGE).with_suffix("").parts).removesuffix(".__init__")
        for node in _nodes(path):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                for decorator in node.decorator_list:
                    target = decorator.func if isinstance(decorator, ast.Call) else decorator
                    if ast.unparse(target) in ("functools.cache", "functools.lru_cache", "cache", "lru_cache"):
                        found.add((module, node.name))
    return found


def test_clear_caches_knows_every_cache_of_the_package():
    assert _cached_functions() == set(caches.CACHES)


def test_clear_caches_empties_the_caches_it_finds(tmp_path, monkeypatch):
    import numpy as np

    from jaxdeblur import restoration
    from jaxdeblur.data import sources
    from jaxdeblur.io import save_image

    for i in range(3):
        save_image(tmp_path / f"{i}.png", np.full((8, 8), i / 4, np.float32))
    monkeypatch.setattr("jaxdeblur.models.load", lambda name: f"loaded {name}")  # no weights read
    # only these two, so the other caches of this test process (compiled programs) stay for the next tests
    filled = {"jaxdeblur.restoration.pretrained_model": 2, "jaxdeblur.data.sources.task_sources": 1}
    monkeypatch.setattr(caches, "CACHES", tuple(tuple(k.rsplit(".", 1)) for k in filled))
    jaxdeblur.clear_caches()
    restoration.pretrained_model("a")
    restoration.pretrained_model("b")
    sources.task_sources(str(tmp_path), None, paired=False, mode="gray", held_out=1)
    assert restoration.pretrained_model("a") == "loaded a"
    assert jaxdeblur.clear_caches() == filled
    assert restoration.pretrained_model.cache_info().currsize == sources.task_sources.cache_info().currsize == 0
    assert jaxdeblur.clear_caches() == dict.fromkeys(filled, 0)


def test_clear_caches_imports_nothing():
    code = "import sys, jaxdeblur; print(jaxdeblur.clear_caches()); print('jaxdeblur.engine' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split("\n")
    assert out[:2] == ["{}", "False"]


def test_the_lazy_names_are_the_real_ones():
    from jaxdeblur.api import deblur
    from jaxdeblur.forward import blur

    assert jaxdeblur.deblur is deblur and jaxdeblur.blur is blur
    assert functools.reduce(getattr, ["api", "deblur"], jaxdeblur) is deblur
