"""The package's layering (DESIGN.md): each layer imports only the layers above it."""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "jaxdeblur"
OPS = {"forward", "noise", "kernels", "metrics", "losses", "deconv", "color", "io", "config"}


def _imports(path: Path) -> set[str]:
    """The jaxdeblur modules a file imports (as dotted names below jaxdeblur), anywhere in the file."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("jaxdeblur"):
            found.add(node.module)
            found.update(f"{node.module}.{a.name}" for a in node.names)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("jaxdeblur"))
    return {name.removeprefix("jaxdeblur").lstrip(".") for name in found}


def _top(name: str) -> str:
    return name.split(".")[0]


@pytest.mark.parametrize("module", sorted(OPS))
def test_ops_import_only_ops(module):
    tops = {_top(n) for n in _imports(PACKAGE / f"{module}.py")} - {""}
    assert tops <= OPS, f"{module} imports {sorted(tops - OPS)}"


def test_specific_rules():
    assert "io" not in {_top(n) for n in _imports(PACKAGE / "kernels.py")}, "kernels must not import io"
    assert "cli" not in {_top(n) for n in _imports(PACKAGE / "demo.py")}, "the demo must not import the CLI"
    for sub in ("nets", "data", "engine"):
        for path in (PACKAGE / sub).glob("*.py"):
            tops = {_top(n) for n in _imports(path)}
            assert not tops & {"api", "cli", "demo", "methods"}, f"{path.name} imports a layer below it"


def test_only_the_cli_imports_the_cli_and_the_base_modules_import_nothing_of_the_package():
    for path in PACKAGE.rglob("*.py"):
        inside = path.relative_to(PACKAGE).parts[0] == "cli"
        assert inside or "cli" not in {_top(n) for n in _imports(path)}, f"{path} imports the command line"
    # clear_caches finds the modules it clears in sys.modules (importing them would fill what it empties);
    # the nets' platform choice sits below every net
    for base in (PACKAGE / "caches.py", PACKAGE / "nets" / "platform.py"):
        assert _imports(base) == set(), f"{base.name} imports {sorted(_imports(base))}"
