"""How each vertex of a diagram looks, and the room it needs: shapes, texts and their measured sizes.

Sizes are in points and measured from the fonts' own metrics (``DejaVu Sans`` and ``DejaVu Sans
Mono`` ship with matplotlib), so a layout is the same on every machine and needs no renderer.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from fdg import ir
from fdg.drawing.layout import Slot
from fdg.runtime import Irreps

SANS, MONO = "DejaVu Sans", "DejaVu Sans Mono"
NODE_SIZE, SMALL_SIZE = 9.0, 7.5  # font sizes, points
LINE = 10.0  # height of a line of small text
STUB = LINE + 3  # room the labels above and below a wire take
TAG_HEIGHT = 13.0
IRREPS_LIMIT = 34  # characters of a wire's irreps label before the middle is elided
ROUND = ("couple", "power", "add")  # shapes whose outline is a circle


@dataclass(frozen=True)
class Look:
    """How one vertex is drawn: its shape and size, the text in it, the captions under it, its weights tag."""

    shape: str
    text: str
    width: float
    height: float
    captions: tuple[str, ...] = ()
    name: str | None = None  # the value's name, shown in italics under the captions
    weights: str | None = None
    bold: bool = False

    def lines(self) -> list[str]:
        """The lines under the shape: captions, then the name."""
        return [*self.captions, *([self.name] if self.name else [])]

    def caption_top(self) -> float:
        """Below the centre, where the captions start: clear of the shape and of the wire label beside it."""
        return max(self.height / 2 + 3, STUB + 1)

    def tag_bottom(self) -> float:
        """Above the centre (negative), where the weights tag ends: clear of the shape and of the wire label."""
        return -max(self.height / 2 + 6, STUB + 1)

    def edge(self, dy: float) -> float:
        """How far right of the centre the outline is at height ``dy`` (every shape is left-right symmetric)."""
        half_w, half_h = self.width / 2, self.height / 2
        if self.shape in ROUND:
            return float((half_w**2 - min(dy * dy, half_w**2)) ** 0.5)
        if self.shape == "scale":
            return half_w * (1 - min(abs(dy) / half_h, 1.0))
        return half_w


@functools.lru_cache(maxsize=4096)
def text_width(text: str, size: float, family: str = SANS) -> float:
    """Advance width of ``text`` in points, from the font's metrics."""
    from matplotlib.font_manager import FontProperties
    from matplotlib.textpath import TextToPath

    prop = FontProperties(family=family, size=size)
    width, _, _ = TextToPath().get_text_width_height_descent(text, prop, ismath=False)
    return float(width)


def short_irreps(irreps: Irreps, limit: int = IRREPS_LIMIT) -> str:
    """Irreps as a label: ``32x(0e+1o+2e)`` when all multiplicities agree, the middle elided past ``limit``.

    >>> short_irreps(Irreps("32x0e+32x1o+32x2e")), short_irreps(Irreps("1x0e+1x1o")), short_irreps(Irreps("2x0e+1o"))
    ('32x(0e+1o+2e)', '0e+1o', '2x0e+1x1o')
    >>> short_irreps(Irreps("4x0e+4x1o+4x1e+4x2o+4x2e+4x3o+4x3e"), limit=20)
    '4x(0e+1o+…+3e) 7 irreps'
    """
    muls = {mul for mul, _ in irreps}
    mul = muls.pop() if len(muls) == 1 else None
    terms = [str(ir) if mul is not None else f"{m}x{ir}" for m, ir in irreps]

    def wrap(parts: list[str]) -> str:
        body = "+".join(parts)
        if mul is None or mul == 1:
            return body
        return f"{mul}x{body}" if len(parts) == 1 else f"{mul}x({body})"

    if len(wrap(terms)) <= limit or len(terms) <= 3:
        return wrap(terms)
    keep = 2
    while keep + 2 < len(terms) and len(wrap([*terms[: keep + 1], "…", terms[-1]])) <= limit:
        keep += 1
    return f"{wrap([*terms[:keep], '…', terms[-1]])} {len(terms)} irreps"


def wire_labels(wire: ir.Feature) -> tuple[str, str]:
    """The two labels of a wire: its irreps (above it) and its axis (below it)."""
    return short_irreps(wire.irreps), f"over {wire.axis}"


def look(diagram: ir.Diagram, node: str) -> Look:
    """The look of one vertex, from its payload."""
    op = diagram.op(node)
    name = _shown_name(diagram, node)
    match op:
        case ir.Input(name=label) if isinstance(diagram.out(node), ir.Feature):
            return Look("input", label, text_width(label, NODE_SIZE) + 18, 22, bold=True)
        case ir.Input(name=label):
            text = f"{label}: {_aux_type(diagram.out(node))}"
            return Look("aux", text, text_width(text, SMALL_SIZE) + 14, 18)
        case ir.Output(name=label):
            return Look("output", label, text_width(label, NODE_SIZE) + 18, 22, bold=True)
        case ir.Couple(mode=mode, weights=weights):
            return Look("couple", "⊗", 28, 28, (f"couple {mode}",), name, _weights_tag(weights))
        case ir.Power(nu=nu, weights=weights):
            return Look("power", "⊗", 32, 32, (f"power ν={nu}",), name, _weights_tag(weights))
        case ir.Fuse(weights=weights, tree=tree):
            return Look("fuse", "⊗", 34, 30, ("fuse", f"tree {tree or 'auto'}"), name, _weights_tag(weights))
        case ir.Linear(weights=weights):
            return Look("linear", "linear", text_width("linear", NODE_SIZE) + 12, 22, (), name, _weights_tag(weights))
        case ir.SphericalHarmonics(lmax=lmax):
            return Look("sh", "Y", 24, 26, (f"sh lmax {lmax}",), name)
        case ir.Gather() | ir.ScatterSum():
            index, axes = _index(diagram, node)
            text = f"[{index}]" if isinstance(op, ir.Gather) else f"Σ {index}"
            return Look("index", text, text_width(text, NODE_SIZE) + 20, 20, (axes,), name)
        case ir.Add():
            return Look("add", "+", 18, 18, (), name)
        case ir.Scale(factor=factor):
            text = f"×{factor:g}"
            return Look("scale", text, text_width(text, SMALL_SIZE) + 22, 20, (), name)
        case ir.Activation(function=function):
            return Look("sort", function, text_width(function, NODE_SIZE) + 12, 20, (), name)
        case ir.Radial(kind=kind):
            return Look("sort", kind, text_width(kind, NODE_SIZE) + 12, 20, (), name)
        case ir.Gate():
            return Look("sort", "gate", text_width("gate", NODE_SIZE) + 12, 20, (), name)
        case ir.NormActivation(function=function):
            text = f"{function}(|·|)"
            return Look("sort", text, text_width(text, NODE_SIZE) + 12, 20, (), name)
        case ir.Sort() | ir.Cat():
            text = "sort" if isinstance(op, ir.Sort) else "cat"
            return Look("sort", text, text_width(text, NODE_SIZE) + 12, 20, (), name)
        case ir.Select(start=start, stop=stop, channels=channels):
            text = f"[{start}:{stop}]" if channels is None else f"[{start}][{channels[0]}:{channels[1]}]"
            kind = "blocks" if channels is None else "block, channels"
            return Look("sort", text, text_width(text, NODE_SIZE) + 12, 20, (kind,), name)
    raise AssertionError(f"no look for {op!r}")  # unreachable: every vertex kind is matched above


def slot(diagram: ir.Diagram, node: str, item: Look) -> Slot:
    """The room a vertex needs in the layout, and where its wires attach."""
    lines = item.lines()
    below = item.caption_top() + LINE * len(lines) if lines else item.height / 2
    above = -item.tag_bottom() + TAG_HEIGHT if item.weights else item.height / 2
    width = max([item.width, *(text_width(t, SMALL_SIZE) + 4 for t in lines)])
    if item.weights:
        width = max(width, text_width(item.weights, SMALL_SIZE) + 10)
    out = diagram.out(node)
    label = 0.0
    if isinstance(out, ir.Feature):
        above, below = max(above, STUB), max(below, STUB)
        irreps, axis = wire_labels(out)
        label = max(text_width(irreps, SMALL_SIZE, MONO), text_width(axis, SMALL_SIZE)) + 12
    # feature operands take the first ports (check_ir's arity rules), index and weights operands come after
    count = sum(1 for _, _, w in diagram.graph.in_edges(node, data="wire") if isinstance(w, ir.Feature))
    spacing = min(10.0, (item.height - 8) / max(count - 1, 1))
    offsets = [(i - (count - 1) / 2) * spacing for i in range(count)]
    ports = tuple((-item.edge(dy), dy) for dy in offsets) or ((-item.width / 2, 0.0),)
    return Slot(width, above, below, label, item.edge(0.0), ports, flush=item.shape == "aux")


def _aux_type(wire: ir.WireType) -> str:
    if isinstance(wire, ir.IndexWire):
        target = wire.target.name if wire.target.size is None else f"0..{wire.target.size - 1}"
        return f"index {wire.axis} → {target}"
    return str(wire)


def _weights_tag(weights: ir.Weights) -> str:
    if weights.kind == "input":
        return f"w: {weights.source}"
    if weights.kind == "per_index":
        return f"w: learned[{weights.source}]×{weights.count}"
    return f"w: {weights.kind}"


def _shown_name(diagram: ir.Diagram, node: str) -> str | None:
    """A value's name for its caption: not for unnamed values, nor for one the output box beside it names."""
    op = diagram.op(node)
    if node.startswith("_") or isinstance(op, ir.Input | ir.Output):
        return None
    consumers = [diagram.op(n) for n in diagram.graph.successors(node)]
    if consumers and all(isinstance(c, ir.Output) and c.name == node for c in consumers):
        return None
    return node


def _index(diagram: ir.Diagram, node: str) -> tuple[str, str]:
    """The index a gather / scatter-sum reads, and its change of axis (``node → edge`` for a gather)."""
    value, index = diagram.operands(node)[:2]
    before, after = diagram.out(value), diagram.out(node)
    axes = f"{before.axis} → {after.axis}" if isinstance(before, ir.Feature) and isinstance(after, ir.Feature) else ""
    op = diagram.op(index)
    return (op.name if isinstance(op, ir.Input) else index), axes
