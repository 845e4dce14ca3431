"""Every relative import in the portal's code resolves, the ones inside functions too: they run only when their
function does, so a module moved into a package (the brief's splits) can leave one pointing nowhere until a
migration's preflight fails with ModuleNotFoundError in production. Reads the source and looks each module up
(importlib.util.find_spec)."""

from __future__ import annotations

import ast
import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("portal", "migrations_app", "diagnostics_app")


def _package_of(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] != "__init__" else parts[:-1])


def _relative_imports():
    for top in PACKAGES:
        for path in sorted((ROOT / top).rglob("*.py")):
            if "migrations" in path.parts:
                continue
            tree = ast.parse(path.read_text(encoding="utf-8"))
            package = _package_of(path)
            for node in ast.walk(tree):
                if isinstance(node, ast.ImportFrom) and node.level:
                    base = package.split(".")
                    base = base[:len(base) - (node.level - 1)] if node.level > 1 else base
                    yield path, node, ".".join([*base, *([node.module] if node.module else [])])


def test_every_relative_import_names_a_module_that_exists():
    missing = []
    for path, node, name in _relative_imports():
        if node.module is None:  # from . import a, b: each is a module or a name of the package
            candidates = [f"{name}.{alias.name}" for alias in node.names]
            if all(importlib.util.find_spec(c) is None for c in candidates) and importlib.util.find_spec(name) is None:
                missing.append(f"{path.relative_to(ROOT)}:{node.lineno} {name}")
        elif importlib.util.find_spec(name) is None:
            missing.append(f"{path.relative_to(ROOT)}:{node.lineno} {name}")
    assert missing == []
