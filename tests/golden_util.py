"""Golden-file comparison shared by the test suite.

A golden file holds the exact expected text (a diagnostic, generated source, a report).  Run the
tests with ``FDG_UPDATE_GOLDEN=1`` to (re)write every golden file from the actual output, then
review the diff in git before committing.
"""

from __future__ import annotations

import difflib
import os
from pathlib import Path

import pytest

UPDATE = os.environ.get("FDG_UPDATE_GOLDEN") == "1"


def _normalized(text: str) -> str:
    # Golden files end with exactly one newline, so editors and `git diff` stay quiet.
    return text.rstrip("\n") + "\n"


def check_golden(path: Path, actual: str) -> None:
    """Assert that ``actual`` equals the content of ``path``; with FDG_UPDATE_GOLDEN=1, rewrite ``path`` instead."""
    actual = _normalized(actual)
    if UPDATE:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(actual)
        return
    if not path.exists():
        pytest.fail(f"missing golden file {path}; run with FDG_UPDATE_GOLDEN=1 to create it")
    expected = path.read_text()
    if actual != expected:
        diff = "".join(difflib.unified_diff(expected.splitlines(True), actual.splitlines(True), "expected", "actual"))
        pytest.fail(f"{path} differs (FDG_UPDATE_GOLDEN=1 rewrites it):\n{diff}", pytrace=False)
