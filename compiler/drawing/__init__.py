"""Stage 9, drawing (``fdg draw``): a picture of a lowered diagram, in the fusion-diagram style, as SVG or PNG.

Inputs stand on the left and outputs on the right; every CG vertex has its own shape (a circle for
``couple``, a double circle for ``power``, a hexagon for ``fuse``, a box for ``linear``, a triangle
for ``sh``) with a small tag above it saying where its weights come from; gathers and scatter-sums
are arrow-shaped markers naming their index and the change of axis.  Every wire is labelled once,
where it leaves its producer: its irreps above, its axis below, in the axis's colour.  Index and
weights inputs are not wires here: they are listed under the feature inputs, and the markers and
tags that use them name them.

The picture is drawn from the IR after the passes (``fdg.lower_source``), never from the plan: it
shows what the diagram computes, not how it is lowered.  ``layout`` places the vertices,
``looks`` says how each is drawn and measures it, ``paint`` paints with matplotlib, imported only
on first use and without pyplot (so no GUI backend): ``import fdg`` and ``fdg check`` never pay
for it.  The package is ``drawing`` rather than ``draw`` so that importing it cannot replace the
function ``fdg.draw`` with a module of the same name.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from fdg import ir
from fdg.checker.evaluate import ParamValue
from fdg.errors import FdgArgumentError

FORMATS = (".svg", ".png")
DPI = 144  # PNG pixels per inch: 2 pixels per point


def check_format(output: str | Path) -> str:
    """The picture format of ``output`` (``svg`` or ``png``), from its suffix; anything else is a bad argument."""
    suffix = Path(output).suffix.lower()
    if suffix not in FORMATS:
        raise FdgArgumentError(
            f"cannot tell the picture format of {str(output)!r}", hint="give -o a file ending in .svg or .png"
        )
    return suffix[1:]


def draw(program: str | Path, diagram: str | None, output: str | Path, params: dict[str, ParamValue]) -> Path:
    """Draw one diagram of ``program`` (a path or source text), or all of them one under the other."""
    from fdg.api import diagram_names, lower_source

    check_format(output)  # a bad file name is reported before any work
    names: list[str | None] = [diagram] if diagram is not None else [*diagram_names(program)] or [None]
    return save([lower_source(program, name, **params) for name in names], output)


def figure(diagrams: Sequence[ir.Diagram]) -> Any:
    """A matplotlib ``Figure`` of ``diagrams``, one under the other, one point per unit of the layout."""
    from matplotlib.figure import Figure

    from fdg.drawing.paint import MARGIN, Panel, paint, panel

    panels: list[Panel] = []
    top = MARGIN
    for diagram in diagrams:
        panels.append(panel(diagram, top))
        top = panels[-1].bottom + 2 * MARGIN
    width = max((p.layout.width for p in panels), default=0.0) + 2 * MARGIN
    height = top - MARGIN
    result = Figure(figsize=(width / 72, height / 72))
    axes = result.add_axes((0, 0, 1, 1))
    axes.set_xlim(0, width)
    axes.set_ylim(height, 0)  # y grows downwards, as in the layout
    axes.set_axis_off()
    paint(axes, panels)
    return result


def save(diagrams: Sequence[ir.Diagram], output: str | Path) -> Path:
    """Draw ``diagrams`` one under the other into ``output`` (``.svg`` or ``.png``); returns its path.

    The SVG keeps its text as text (searchable, and selectable in a browser) and is byte-identical
    from run to run: a fixed salt for its ids and no date.
    """
    fmt = check_format(output)
    import matplotlib

    with matplotlib.rc_context({"svg.hashsalt": "fdg", "svg.fonttype": "none"}):
        picture = figure(diagrams)
        path = Path(output)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            picture.savefig(path, format=fmt, dpi=DPI, metadata={"Date": None} if fmt == "svg" else None)
        except OSError as exc:
            raise FdgArgumentError(f"cannot write {output}: {exc.strerror}") from None
    return path
