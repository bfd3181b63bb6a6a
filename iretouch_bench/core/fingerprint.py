"""Fingerprints of the code a cached artefact depends on.

A cache (the embedded dataset build, PPR10K instruction texts) is valid only for the code
that made it. Listing "the modules that matter" by hand goes stale the first time a helper
moves (it did: the CIELAB measures and image I/O were outside the embedded fingerprint), so
:func:`code_fingerprint` follows the imports instead: starting from the modules given, it
parses each one's source, follows every import of a suite module (top-level or inside a
function, absolute or relative), and hashes the sources of the whole closure.
"""

from __future__ import annotations

import ast
import hashlib
import importlib.util
from functools import lru_cache
from pathlib import Path

ROOT_PACKAGE = "iretouch_bench"


def _source_path(module: str) -> Path | None:
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.origin or not spec.origin.endswith(".py"):
        return None
    return Path(spec.origin)


def _imports(module: str, path: Path) -> set[str]:
    """Suite modules imported anywhere in ``path`` (a ``from X import name`` also yields ``X.name``,
    which is kept when it is itself a module)."""
    tree = ast.parse(path.read_bytes(), filename=str(path))
    is_pkg = path.name == "__init__.py"
    package = module if is_pkg else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)] if node.level > 1 else base
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            found.add(target)
            found.update(f"{target}.{a.name}" for a in node.names)
    return {m for m in found if m == ROOT_PACKAGE or m.startswith(ROOT_PACKAGE + ".")}


def module_closure(*modules: str) -> dict[str, Path]:
    """``{module: source path}`` for ``modules`` and every suite module they import, transitively."""
    seen: dict[str, Path] = {}
    todo = list(modules)
    while todo:
        mod = todo.pop()
        if mod in seen:
            continue
        path = _source_path(mod)
        if path is None:  # a name imported from a module, not a module itself
            continue
        seen[mod] = path
        todo.extend(_imports(mod, path) - seen.keys())
        parent = mod.rpartition(".")[0]
        if parent and parent not in seen:  # importing a.b.c runs a/__init__ and a/b/__init__
            todo.append(parent)
    return seen


@lru_cache(maxsize=None)
def code_fingerprint(*modules: str) -> str:
    """sha256 over the names and sources of :func:`module_closure` of ``modules`` (sorted)."""
    h = hashlib.sha256()
    for name, path in sorted(module_closure(*modules).items()):
        h.update(name.encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()
