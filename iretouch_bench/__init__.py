"""iretouch-bench: evaluation suite for instruction-guided photo retouching.

The flow of a run (see DESIGN.md):

    data (Samples) -> registry (model adapter) -> runner.generate (outputs/)
        -> runner.score (metrics, judge, identity) -> runner.aggregate (summary, table)
"""

from __future__ import annotations

import importlib.abc
import importlib.util
import sys
from pathlib import Path

__version__ = "0.1.0"


class _CheckoutFinder(importlib.abc.MetaPathFinder):
    """Maps ``iretouch_bench.models`` / ``.baselines`` / ``.training`` to the top-level ``models/``,
    ``baselines/`` and ``training/`` folders when the package is imported straight from a source checkout
    (``python -m pytest`` in the repository, a notebook next to it). An installed package
    has them inside (pyproject's package-dir mapping) and never reaches this finder."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def find_spec(self, fullname, path=None, target=None):
        parts = fullname.split(".")
        if len(parts) < 2 or parts[0] != __name__ or parts[1] not in ("models", "baselines", "training"):
            return None
        base = self.root.joinpath(*parts[1:])
        if base.is_dir() and (base / "__init__.py").exists():
            return importlib.util.spec_from_file_location(
                fullname, base / "__init__.py", submodule_search_locations=[str(base)])
        if base.with_suffix(".py").exists():
            return importlib.util.spec_from_file_location(fullname, base.with_suffix(".py"))
        return None


_here = Path(__file__).resolve().parent
if not (_here / "models").exists() and (_here.parent / "models" / "__init__.py").exists() \
        and (_here.parent / "pyproject.toml").exists():
    sys.meta_path.append(_CheckoutFinder(_here.parent))
