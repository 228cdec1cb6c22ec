"""README.md's table of what each diagram of diagrams/ costs, generated from `fdg report` so that it cannot go stale.

    .venv/bin/python benchmarks/diagram_costs.py            # print the table
    .venv/bin/python benchmarks/diagram_costs.py --write    # put it into README.md, between its two markers

One row per diagram of every file, at the diagram's default parameters and the report's default sizes (edge = 20000
rows, every other axis 1000, a fixed range its own size). The numbers are the cost model's estimates for float32
(docs/performance.md), not timings: benchmarks/conv.py and friends measure. tests/test_readme_costs.py fails when
README.md's table is not what this prints.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import fdg
from fdg.frontend.parser import parse

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
BEGIN = "<!-- diagram costs: written by `python benchmarks/diagram_costs.py --write`; do not edit by hand -->"
END = "<!-- end of diagram costs -->"
HEADER = (
    "| file | diagram (defaults) | sizes | learned parameters | external weights per row "
    "| forward MFLOP | backward MFLOP | largest intermediate | estimated speed-up over naive |\n"
    "|---|---|---|--:|---|--:|--:|--:|--:|"
)


def _number(x: float) -> str:
    """Three significant digits, without exponents: 0.0384, 3.84, 384, 3,840."""
    return f"{x:,.0f}" if x >= 100 else f"{x:.3g}"


def _row(path: Path, name: str) -> str:
    r = fdg.report(path, name)
    rows = ", ".join(f"{axis} {size}" for axis, size in sorted(r.sizes.items()))
    external = ", ".join(f"`{k}`: {v}" for k, v in r.external.items()) or "—"
    cells = [
        f"`{path.name}`",
        r.diagram,
        rows,
        f"{r.parameters:,}",
        external,
        _number(r.plan.flops / 1e6),
        _number(r.plan.backward_flops / 1e6),
        f"{_number(r.plan.largest / 1e6)} MB",
        f"{r.speedup:.2f}×",
    ]
    return "| " + " | ".join(cells) + " |"


def table(folder: Path = ROOT / "diagrams") -> str:
    """The markdown table, one row per diagram, files in name order and diagrams in file order."""
    lines = [HEADER]
    for path in sorted(folder.glob("*.fdg")):
        lines.extend(_row(path, d.name.id) for d in parse(path.read_text(), path.name).diagrams)
    return "\n".join(lines)


def between_markers(text: str) -> str:
    """What README.md holds between the two markers (the table it shows)."""
    if BEGIN not in text or END not in text:
        raise SystemExit(f"README.md lacks the markers of the cost table:\n{BEGIN}\n{END}")
    return text.split(BEGIN, 1)[1].split(END, 1)[0].strip("\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--write", action="store_true", help="replace the table in README.md")
    args = parser.parse_args(argv)
    found = table()
    if not args.write:
        print(found)
        return 0
    text = README.read_text()
    between_markers(text)  # both markers are there
    before, rest = text.split(BEGIN, 1)
    README.write_text(f"{before}{BEGIN}\n{found}\n{END}{rest.split(END, 1)[1]}")
    print(f"README.md: cost table of {found.count(chr(10)) - 1} diagrams written")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
