"""The layout rules a newcomer relies on: small modules, tests that mirror the code."""

from __future__ import annotations

import ast
from pathlib import Path

from carehouse.core.settings import PROJECT_ROOT

TESTS = PROJECT_ROOT / "tests"
# A module does one thing: when a file grows past this, its section banners are its seams.
MAX_MODULE_LINES = 500
# Test folders that mirror a project folder other than a package of carehouse/.
MIRRORED_FOLDERS = {"flows", "dlt_sources", "dbt", "soda"}


def _python_files(*roots: str) -> list[Path]:
    return sorted(path for root in roots for path in (PROJECT_ROOT / root).rglob("*.py"))


def test_no_module_is_longer_than_the_limit() -> None:
    too_long = {
        str(path.relative_to(PROJECT_ROOT)): lines
        for path in _python_files("carehouse", "flows", "dlt_sources")
        if (lines := len(path.read_text(encoding="utf-8").splitlines())) > MAX_MODULE_LINES
    }
    assert too_long == {}, "split these at their seams"


def test_test_folders_mirror_the_packages() -> None:
    packages = {path.name for path in (PROJECT_ROOT / "carehouse").iterdir() if path.is_dir()}
    folders = {
        path.name
        for path in TESTS.iterdir()
        if path.is_dir() and not path.name.startswith((".", "_"))
    }
    assert folders - {"support"} <= packages | MIRRORED_FOLDERS


def test_no_test_imports_a_conftest() -> None:
    importers = []
    for path in _python_files("tests"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = (
                [node.module or ""]
                if isinstance(node, ast.ImportFrom)
                else [alias.name for alias in node.names]
                if isinstance(node, ast.Import)
                else []
            )
            if any(name.split(".")[-1] == "conftest" for name in names):
                importers.append(str(path.relative_to(PROJECT_ROOT)))
    # Shared helpers live in tests/support/; fixtures reach tests through pytest, not imports.
    assert importers == []
