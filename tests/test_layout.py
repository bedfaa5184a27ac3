"""The layout rules of docs/architecture.md that import-linter cannot check."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ["config", "tenants", "actions", "journeys"]
MAX_MODULE_LINES = 450
MAX_CLASS_LINES = 250


def sources(*, with_tests: bool = False) -> list[Path]:
    roots = PACKAGES + (["tests", "bench"] if with_tests else [])
    return sorted(p for root in roots for p in (ROOT / root).rglob("*.py") if "migrations" not in p.parts)


def underscore_imports(text: str) -> list[str]:
    """`from x import _name` of a project module: a private name used outside the module that owns it."""
    return [
        f"line {node.lineno}: {alias.name} from {node.module}"
        for node in ast.walk(ast.parse(text))
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] in [*PACKAGES, "tests"]
        for alias in node.names
        if alias.name.startswith("_") and not alias.name.startswith("__")
    ]


def test_no_module_imports_another_modules_private_name():
    found = [f"{path.relative_to(ROOT)} {problem}" for path in sources(with_tests=True)
             for problem in underscore_imports(path.read_text())]  # fmt: skip
    assert found == []


def test_the_check_sees_a_private_import_and_lets_public_ones_through():
    text = "from actions.delivery.auth import _get as value, mask\nfrom os import _exit\nfrom x import __version__\n"
    assert underscore_imports(text) == ["line 1: _get from actions.delivery.auth"]


@pytest.mark.parametrize("package", ["actions", "journeys"])
def test_modules_and_classes_stay_small_enough_to_read(package):
    too_big = []
    for path in sources():
        if path.parts[len(ROOT.parts)] != package:
            continue
        text = path.read_text()
        if text.count("\n") > MAX_MODULE_LINES:
            too_big.append(f"{path.relative_to(ROOT)}: {text.count(chr(10))} lines")
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.ClassDef) and node.end_lineno - node.lineno + 1 > MAX_CLASS_LINES:
                too_big.append(
                    f"{path.relative_to(ROOT)}: class {node.name}, {node.end_lineno - node.lineno + 1} lines"
                )
    assert too_big == []
