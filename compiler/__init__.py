"""fdg: a compiler for fusion diagrams.

>>> import fdg
>>> mod = fdg.compile("diagram D() { input x : 0e + 1o\\n output y = linear(x) -> 0e + 1o }")
>>> sorted(mod.inputs)
['x']
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

# The API is imported on first use, so that `import fdg.frontend.parser` (or the CLI's `fdg check`) does not
# pay for torch and the runtime.
_API = {"FdgWarning", "build", "check", "compile", "draw", "emit", "lower_source", "report"}

__all__ = ["FdgError", "__version__", *sorted(_API)]


def __getattr__(name: str) -> Any:
    if name in _API:
        return getattr(importlib.import_module("fdg.api"), name)
    if name == "FdgError":
        return importlib.import_module("fdg.errors").FdgError
    raise AttributeError(f"module 'fdg' has no attribute {name!r}")
