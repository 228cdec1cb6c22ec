"""The front door (``fdg build``, ``make run``): every diagram of some files compiled, reported and drawn into a
folder, with one table row per diagram."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from fdg.reporting.report import DEFAULT_ROWS, DEFAULT_SIZES, make_report

#: what the estimates assume, in words
SIZES = (
    ", ".join(f"{axis}={rows}" for axis, rows in DEFAULT_SIZES.items())
    + f", other axes {DEFAULT_ROWS} rows unless fixed"
)

#: the table's columns, by their headings
COLUMNS = ("file", "diagram", "parameters", "est. fwd+bwd", "learned", "written")


@dataclass(frozen=True)
class Row:
    file: str
    diagram: str
    parameters: str
    seconds: float  # the report's estimate, forward + backward, at its default sizes
    learned: int

    def cells(self) -> tuple[str, ...]:
        estimate = f"{self.seconds * 1e3:.3g} ms"
        written = f"{self.diagram}.{{py,svg}}, reports/{self.diagram}.txt"
        return (self.file, self.diagram, self.parameters, estimate, f"{self.learned:,}", written)


def build_file(path: Path, out: Path) -> list[Row]:
    """Compile, report and draw every diagram of ``path`` into ``out``: ``NAME.py``, ``NAME.svg`` and
    ``reports/NAME.txt``; warnings about the program are issued as :class:`fdg.FdgWarning`."""
    from fdg.api import build, diagram_names
    from fdg.drawing import save

    rows = []
    for name in diagram_names(path):
        built = build(path, name)
        report = make_report(built.plan)
        for relative, text in ((f"{name}.py", built.source), (f"reports/{name}.txt", f"{report}\n")):
            (out / relative).parent.mkdir(parents=True, exist_ok=True)
            (out / relative).write_text(text, encoding="utf-8")
        save([built.plan.diagram], out / f"{name}.svg")  # the IR after the passes, as fdg draw draws it
        params = built.plan.diagram.params_text
        rows.append(Row(str(path), name, params, report.plan.seconds, built.plan.learned))
    return rows


def format_table(rows: list[Row], out: Path) -> str:
    """The rows as an aligned text table under a heading, with what the estimates assume."""
    cells = [COLUMNS, *(row.cells() for row in rows)]
    widths = [max(len(line[i]) for line in cells) for i in range(len(COLUMNS))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip() for line in cells]
    note = f"written to {out}/; estimates at {SIZES} (fdg report FILE --size AXIS=N for others)"
    return "\n".join([lines[0], "  ".join("-" * w for w in widths), *lines[1:], note])
