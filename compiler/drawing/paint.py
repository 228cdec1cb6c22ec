"""Painting laid-out diagrams onto matplotlib axes (imported only when a picture is drawn)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from matplotlib import patches
from matplotlib.axes import Axes
from matplotlib.path import Path

from fdg import ir
from fdg.drawing.layout import Layout, Slot, Wire, layout
from fdg.drawing.looks import (
    LINE,
    MONO,
    NODE_SIZE,
    ROUND,
    SMALL_SIZE,
    TAG_HEIGHT,
    Look,
    look,
    slot,
    text_width,
    wire_labels,
)

MARGIN, TITLE = 18.0, 26.0  # around the picture; room for a diagram's title
WIRE_WIDTH = 1.2
INK, CAPTION = "#37474f", "#424242"
AXIS_COLOURS = ("#1f4e8c", "#8e3b9c", "#b35900", "#2e7d32", "#a61c3c", "#00695c")
FILL = {
    "input": "#eceff1",
    "aux": "#ffffff",
    "output": "#ffffff",
    "couple": "#d6e6f5",
    "power": "#d6e6f5",
    "fuse": "#d6e6f5",
    "linear": "#dcefd8",
    "sh": "#fde4c8",
    "index": "#ece0f3",
    "add": "#ffffff",
    "scale": "#ffffff",
    "sort": "#ffffff",
}
TAG_FILL, TAG_INK = "#fff5cc", "#9e7c00"


@dataclass(frozen=True)
class Panel:
    """One diagram laid out for the picture: its vertices' looks and slots, its wires, and where its title goes."""

    diagram: ir.Diagram
    looks: dict[str, Look]
    slots: dict[str, Slot]
    wires: tuple[Wire, ...]
    layout: Layout
    top: float

    @property
    def bottom(self) -> float:
        return self.top + TITLE + self.layout.height


def panel(diagram: ir.Diagram, top: float) -> Panel:
    """Measure and lay out one diagram; its title goes at ``top``, the diagram under it.

    Feature inputs come first in the first column, in declaration order, then the index and weights
    inputs: those are not drawn as wires (the markers and tags that read them name them).
    """
    looks = {node: look(diagram, node) for node in diagram.graph}
    slots = {node: slot(diagram, node, looks[node]) for node in diagram.graph}
    rank = {n: i for i, n in enumerate(diagram.graph)}
    edges = sorted(diagram.graph.edges(data=True), key=lambda e: (rank[e[1]], e[2]["port"]))
    wires = tuple(Wire(s, d, a["port"]) for s, d, a in edges if isinstance(a["wire"], ir.Feature))
    inputs = diagram.inputs()
    first = sorted(inputs, key=lambda n: looks[n].shape == "aux")  # stable: declaration order within each kind
    return Panel(diagram, looks, slots, wires, layout(diagram.order(), wires, slots, first, diagram.outputs()), top)


def paint(axes: Axes, panels: list[Panel]) -> None:
    """Paint every panel; each axis gets its own colour, by first appearance (inputs first)."""
    colours: dict[str, str] = {}
    for p in panels:
        for node in p.diagram.order():
            out = p.diagram.out(node)
            if isinstance(out, ir.Feature):
                colours.setdefault(out.axis.name, AXIS_COLOURS[len(colours) % len(AXIS_COLOURS)])
    for p in panels:
        _paint_panel(axes, p, colours)


def _paint_panel(axes: Axes, p: Panel, colours: dict[str, str]) -> None:
    d = p.diagram
    dx, dy = MARGIN, p.top + TITLE
    params = d.params_text
    axes.text(MARGIN, p.top, f"{d.name}({params})", fontsize=11, fontweight="bold", va="top", color="#212121")
    for wire in p.wires:
        out = d.out(wire.source)
        assert isinstance(out, ir.Feature)  # only feature wires are drawn
        points = [(x + dx, y + dy) for x, y in p.layout.route(wire, p.slots)]
        bends = (len(points) - 2) // 4
        codes = [Path.MOVETO, Path.LINETO, *[Path.CURVE4, Path.CURVE4, Path.CURVE4, Path.LINETO] * bends]
        colour = colours[out.axis.name]
        axes.add_patch(patches.PathPatch(Path(points, codes), fill=False, edgecolor=colour, lw=WIRE_WIDTH, zorder=1))
    for node, item in p.looks.items():
        x, y = p.layout.x[node] + dx, p.layout.y[node] + dy
        _paint_vertex(axes, item, x, y)
        out = d.out(node)
        if isinstance(out, ir.Feature):
            colour = colours[out.axis.name]
            irreps, axis = wire_labels(out)
            left = x + p.slots[node].exit + 5
            axes.text(left, y - 2.5, irreps, fontsize=SMALL_SIZE, family=[MONO, "monospace"], color=colour, va="bottom")
            axes.text(left, y + 2.5, axis, fontsize=SMALL_SIZE, style="italic", color=colour, va="top")


def _outline(item: Look, x: float, y: float) -> list[tuple[float, float]]:
    """Corners of the polygonal shapes: a triangle for sh, an arrow for index markers, a hexagon, a diamond."""
    w, h = item.width / 2, item.height / 2
    corners = {
        "sh": [(-w, -h), (w, 0), (-w, h)],
        "index": [(-w, -h), (w - 7, -h), (w, 0), (w - 7, h), (-w, h)],
        "fuse": [(-w, -h / 2), (0, -h), (w, -h / 2), (w, h / 2), (0, h), (-w, h / 2)],
        "scale": [(-w, 0), (0, -h), (w, 0), (0, h)],
    }[item.shape]
    return [(x + a, y + b) for a, b in corners]


def _shape(item: Look, x: float, y: float) -> list[Any]:
    """The patches of one vertex's shape."""
    w, h = item.width, item.height
    style: dict[str, Any] = {"facecolor": FILL[item.shape], "edgecolor": INK, "lw": 1.0, "zorder": 2}
    if item.shape in ROUND:
        inner = [patches.Circle((x, y), w / 2 - 3.5, fill=False, edgecolor=INK, zorder=2)]
        return [patches.Circle((x, y), w / 2, **style), *(inner if item.shape == "power" else [])]
    if item.shape in ("sh", "index", "fuse", "scale"):
        return [patches.Polygon(_outline(item, x, y), closed=True, **style)]
    rounding = 2 if item.shape == "linear" else 6
    if item.shape == "aux":
        style["linestyle"] = (0, (3, 2))
    if item.shape == "output":
        style["lw"] = 1.8
    box = f"round,pad=0,rounding_size={rounding}"
    return [patches.FancyBboxPatch((x - w / 2, y - h / 2), w, h, boxstyle=box, **style)]


def _paint_vertex(axes: Axes, item: Look, x: float, y: float) -> None:
    for patch in _shape(item, x, y):
        axes.add_patch(patch)
    size = 14.0 if item.text in ("⊗", "+", "Y") else SMALL_SIZE if item.shape in ("aux", "scale") else NODE_SIZE
    centre = x - item.width / 6 if item.shape == "sh" else x - 3 if item.shape == "index" else x
    weight = "bold" if item.bold else "normal"
    axes.text(centre, y, item.text, fontsize=size, fontweight=weight, ha="center", va="center_baseline", zorder=3)
    for i, line in enumerate(item.lines()):
        style = "italic" if item.name and i == len(item.captions) else "normal"
        top = y + item.caption_top() + i * LINE
        axes.text(x, top, line, fontsize=SMALL_SIZE, style=style, ha="center", va="top", color=CAPTION, zorder=3)
    if item.weights:
        bottom = y + item.tag_bottom()
        width = text_width(item.weights, SMALL_SIZE) + 8
        axes.plot([x, x], [bottom, y - item.height / 2], color=TAG_INK, lw=0.8, zorder=1)
        corner = (x - width / 2, bottom - TAG_HEIGHT)
        tag_style: dict[str, Any] = {"facecolor": TAG_FILL, "edgecolor": TAG_INK, "lw": 0.8, "zorder": 2}
        axes.add_patch(
            patches.FancyBboxPatch(corner, width, TAG_HEIGHT, boxstyle="round,pad=0,rounding_size=3", **tag_style)
        )
        axes.text(
            x, bottom - TAG_HEIGHT / 2, item.weights, fontsize=SMALL_SIZE, ha="center", va="center_baseline", zorder=3
        )
