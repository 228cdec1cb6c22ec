"""The IR: a fusion diagram as a networkx multigraph of vertices joined by typed wires.

Nodes are operations.  Each node has two attributes: ``op`` (a frozen vertex payload below) and
``out`` (the :data:`WireType` of the value it produces, ``None`` for outputs).  Each edge is a
wire from the producer to one consumer, with attributes ``port`` (the operand position at the
consumer) and ``wire`` (the producer's ``out``).  A producer feeding both operands of a vertex,
as in ``couple(a, a)``, gives two parallel edges — hence the multigraph.

Payloads are immutable; passes build new graphs (``graph.copy()``) and never mutate their input.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal

import networkx as nx

from fdg.errors import Span
from fdg.runtime import Irreps
from fdg.runtime.fusion_paths import Tree

#: identifiers the generated module itself uses (its imports, ``self``, ``super()``): no input or diagram may take them
GENERATED = frozenset({"self", "torch", "fdg", "super"})

# ---------------------------------------------------------------- wires


@dataclass(frozen=True)
class Axis:
    """A batch axis: ``node``, ``edge``, ``batch`` ... ``size`` is known only for fixed ranges (``-> 4``)."""

    name: str
    size: int | None = None

    def __str__(self) -> str:
        return self.name


@dataclass(frozen=True)
class Feature:
    """A wire of irreps features, tensor shape ``[axis, irreps.dim]`` in e3nn's ``mul_ir`` layout."""

    axis: Axis
    irreps: Irreps

    def __str__(self) -> str:
        return f"{self.irreps} over {self.axis}"


@dataclass(frozen=True)
class IndexWire:
    """An integer tensor of shape ``[axis]`` holding positions along ``target``."""

    axis: Axis
    target: Axis

    def __str__(self) -> str:
        return f"index {self.axis} -> {self.target.name if self.target.size is None else self.target.size}"


@dataclass(frozen=True)
class WeightsWire:
    """External per-sample weights, shape ``[axis, numel]``; ``numel`` is fixed by the consuming vertex."""

    axis: Axis
    numel: int

    def __str__(self) -> str:
        return f"weights[{self.numel}] over {self.axis}"


WireType = Feature | IndexWire | WeightsWire

# ---------------------------------------------------------------- weights of a vertex

WeightKind = Literal["learned", "none", "input", "per_index"]


@dataclass(frozen=True)
class Weights:
    """How a weighted vertex gets its weights.

    ``learned``: one trainable vector; ``none``: no weights; ``input``: an external weights wire
    (operand port 2 for couple); ``per_index``: ``learned[z]``, one trainable vector per value of
    the index wire ``z`` (``count`` of them), selected per sample.
    """

    kind: WeightKind
    numel: int = 0
    count: int = 1
    source: str | None = None  # the input name for ``input`` / ``per_index``

    def __str__(self) -> str:
        if self.kind == "input":
            return f"weights={self.source}"
        if self.kind == "per_index":
            return f"weights=learned[{self.source}]x{self.count}"
        return f"weights={self.kind}"


# ---------------------------------------------------------------- paths


@dataclass(frozen=True)
class CouplePath:
    """One CG path ``a[i1] x b[i2] -> out[i_out]`` (indices into the irreps lists) and its e3nn normalization."""

    i1: int
    i2: int
    i_out: int
    shape: tuple[int, ...]  # shape of this path's weights; () when the vertex has none
    alpha: float  # e3nn's sqrt(alpha): irrep normalization x path normalization


@dataclass(frozen=True)
class LinearPath:
    """One block ``in[i_in] -> out[i_out]`` of an equivariant linear map, weights ``(mul_in, mul_out)``."""

    i_in: int
    i_out: int
    alpha: float


# ---------------------------------------------------------------- vertices


@dataclass(frozen=True)
class Input:
    name: str
    span: Span = field(compare=False, repr=False)


@dataclass(frozen=True)
class Couple:
    """CG vertex ``a (x) b -> out``; ports 0, 1 = a, b; port 2 = external weights or index."""

    mode: str
    weights: Weights
    irreps_out: Irreps
    paths: tuple[CouplePath, ...]
    span: Span = field(compare=False, repr=False)
    per_path: bool = False  # one output block per path, in e3nn's instruction order (``[blocks = paths]``)


@dataclass(frozen=True)
class Linear:
    """Equivariant linear map (channel mixing per irrep); port 0 = x, port 1 = index for ``learned[z]``."""

    weights: Weights
    irreps_out: Irreps
    paths: tuple[LinearPath, ...]
    span: Span = field(compare=False, repr=False)
    bias: bool = False  # a learned bias on every 0e output block (e3nn's ``Linear(biases=True)``)

    @property
    def bias_numel(self) -> int:
        """Biases: one per channel of each ``0e`` output block, in output order (0 without ``bias``)."""
        return sum(mul for mul, ir in self.irreps_out if ir.is_scalar()) if self.bias else 0


@dataclass(frozen=True)
class SphericalHarmonics:
    lmax: int
    span: Span = field(compare=False, repr=False)


@dataclass(frozen=True)
class Gather:
    """``x[i]``: port 0 = x over the index's target, port 1 = the index."""

    span: Span = field(compare=False, repr=False)


@dataclass(frozen=True)
class ScatterSum:
    """``sum(x, by = i)``: port 0 = x over the index's axis, port 1 = the index."""

    span: Span = field(compare=False, repr=False)


@dataclass(frozen=True)
class Add:
    """Sum of same-typed wires on ports 0..n-1."""

    span: Span = field(compare=False, repr=False)


@dataclass(frozen=True)
class Scale:
    factor: float
    span: Span = field(compare=False, repr=False)


@dataclass(frozen=True)
class Cat:
    """Wires of one axis side by side: their irreps appended in order (e3nn's ``cat``), not merged."""

    span: Span = field(compare=False, repr=False)


@dataclass(frozen=True)
class Select:
    """Blocks ``start`` to ``stop - 1`` of a wire's irreps (e3nn's ``irreps[start:stop]``), or with ``channels =
    (c0, c1)`` channels ``c0`` to ``c1 - 1`` of block ``start`` alone (``stop = start + 1``): a contiguous part of the
    wire either way."""

    start: int
    stop: int
    span: Span = field(compare=False, repr=False)
    channels: tuple[int, int] | None = None

    def picked(self, irreps: Irreps) -> Irreps:
        """The irreps this selection leaves of ``irreps``."""
        if self.channels is None:
            return Irreps(list(irreps)[self.start : self.stop])
        c0, c1 = self.channels
        return Irreps([(c1 - c0, irreps[self.start].ir)])

    def bounds(self, irreps: Irreps) -> tuple[int, int]:
        """The first and the end column of the selection in the wire's features."""
        dims = [mul * ir_.dim for mul, ir_ in irreps]
        first, end = sum(dims[: self.start]), sum(dims[: self.stop])
        if self.channels is None:
            return first, end
        c0, c1 = self.channels
        width = irreps[self.start].ir.dim
        return first + c0 * width, first + c1 * width


@dataclass(frozen=True)
class Activation:
    """A pointwise function of scalar channels (``silu(x)``), normalized as e3nn's ``Activation`` normalizes it (to
    unit second moment under a standard normal input, ``fdg.checker.activations.normalization``)."""

    function: str
    span: Span = field(compare=False, repr=False)


@dataclass(frozen=True)
class NormActivation:
    """e3nn's ``NormActivation`` (``normalize=True``, ``epsilon=1e-8``, no bias): each channel of each block times
    ``function(|x|) / |x|``, the norm over the block's ``2l + 1`` components, its square clamped below at
    ``epsilon**2``.  The function is applied as it is (e3nn does not normalize it here)."""

    function: str
    span: Span = field(compare=False, repr=False)

    EPSILON = 1e-8


@dataclass(frozen=True)
class Gate:
    """e3nn's ``Gate`` after its activations: ports 0, 1, 2 = scalars, gates, gated; the result is the scalars, then
    each channel of the gated blocks times its gate (gate ``c`` scales gated channel ``c``, in order)."""

    span: Span = field(compare=False, repr=False)


@dataclass(frozen=True)
class Radial:
    """A radial feature of edges: ``length`` of a vector (``1x0e``), ``bessel`` of a length (``args = (n, r_max)``,
    ``n x 0e``) or its ``cutoff`` envelope (``args = (r_max, p)``, ``1x0e``); ``fdg.runtime.radial``."""

    kind: str
    args: tuple[float, ...]
    span: Span = field(compare=False, repr=False)


@dataclass(frozen=True)
class Sort:
    """The irreps blocks of a wire reordered as e3nn's ``Irreps.sort()`` does: block ``k`` of the result is block
    ``order[k]`` of the input (by degree, odd before even, ties in their order)."""

    order: tuple[int, ...]
    span: Span = field(compare=False, repr=False)


@dataclass(frozen=True)
class Fuse:
    """n-ary fusion vertex; ports 0..n-1 = its inputs, port n = external weights or the index of ``learned[z]``.

    Its weights belong to the paths of ``basis`` (``fdg.runtime.fusion_tables``): the tree written as ``tree = ...``,
    else the left-to-right tree.  The compiler may evaluate another tree (or none: folded) with recoupled weights.
    """

    weights: Weights
    irreps_out: Irreps
    tree: str | None  # as written; None: the compiler chooses the tree it evaluates
    basis: Tree
    lmax: int | None  # cap on the degrees of irreps at internal nodes
    labels: tuple[str, ...]  # the inputs as written, to spell trees in reports
    span: Span = field(compare=False, repr=False)


@dataclass(frozen=True)
class Power:
    """MACE symmetric contraction of order ``nu`` on a minimal basis; port 0 = a, port 1 = weights or index."""

    nu: int
    weights: Weights
    irreps_out: Irreps
    span: Span = field(compare=False, repr=False)


@dataclass(frozen=True)
class Output:
    name: str
    span: Span = field(compare=False, repr=False)


Vertex = (
    Input
    | Couple
    | Linear
    | SphericalHarmonics
    | Gather
    | ScatterSum
    | Add
    | Scale
    | Cat
    | Select
    | Sort
    | Activation
    | Gate
    | NormActivation
    | Radial
    | Fuse
    | Power
    | Output
)


def format_params(params: Iterable[tuple[str, int | float | Irreps]]) -> str:
    """``mul=32, hidden='16x0e+16x1o'``: parameter values as keyword arguments of ``fdg.compile``."""
    return ", ".join(f"{k}={str(v)!r}" if isinstance(v, Irreps) else f"{k}={v!r}" for k, v in params)


@dataclass(frozen=True, eq=False)
class Diagram:
    """One lowered diagram: its name, the parameter values it was lowered with, and its graph."""

    name: str
    params: tuple[tuple[str, int | float | Irreps], ...]
    graph: nx.MultiDiGraph

    @property
    def params_text(self) -> str:
        """``mul=32, hidden='16x0e+16x1o'``: the parameter values, as keyword arguments of ``fdg.compile``."""
        return format_params(self.params)

    def inputs(self) -> list[str]:
        """Node ids of the inputs, in declaration order."""
        return [n for n, op in self.graph.nodes(data="op") if isinstance(op, Input)]

    def outputs(self) -> list[str]:
        """Node ids of the outputs, in declaration order."""
        return [n for n, op in self.graph.nodes(data="op") if isinstance(op, Output)]

    def op(self, node: str) -> Vertex:
        op: Vertex = self.graph.nodes[node]["op"]
        return op

    def out(self, node: str) -> WireType:
        out: WireType = self.graph.nodes[node]["out"]
        return out

    def operands(self, node: str) -> list[str]:
        """Producers of ``node``'s operands, ordered by port."""
        edges = sorted(self.graph.in_edges(node, data="port"), key=lambda e: e[2])
        return [src for src, _, _ in edges]

    def order(self) -> list[str]:
        """A deterministic topological order: ties broken by creation order."""
        rank = {n: i for i, n in enumerate(self.graph.nodes)}
        return list(nx.lexicographical_topological_sort(self.graph, key=rank.__getitem__))
