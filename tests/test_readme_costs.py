"""README.md's diagram tables are current: every file of diagrams/ is listed, and the cost table is what `fdg report`
computes today (benchmarks/diagram_costs.py writes it), so the numbers cannot go stale silently."""

from __future__ import annotations

import difflib
from pathlib import Path

import pytest
from diagram_costs import README, between_markers, table

from fdg.frontend.parser import parse

ROOT = Path(__file__).resolve().parents[1]
DIAGRAMS = sorted((ROOT / "diagrams").glob("*.fdg"))


def test_cost_table_is_what_fdg_report_computes() -> None:
    shown, current = between_markers(README.read_text()), table()
    if shown != current:
        diff = "\n".join(
            difflib.unified_diff(shown.splitlines(), current.splitlines(), "README.md", "fdg report", lineterm="")
        )
        pytest.fail(f"README.md's cost table is stale; run: python benchmarks/diagram_costs.py --write\n{diff}")


def test_every_diagram_is_listed() -> None:
    text = README.read_text()
    for path in DIAGRAMS:
        assert f"| `diagrams/{path.name}` |" in text, f"README.md's family table lacks {path.name}"
    rows = between_markers(text).splitlines()[2:]
    names = [d.name.id for path in DIAGRAMS for d in parse(path.read_text()).diagrams]
    assert len(rows) == len(names) and all(
        f"| {name}(" in row or f"| {name} |" in row for name, row in zip(names, rows, strict=True)
    )
