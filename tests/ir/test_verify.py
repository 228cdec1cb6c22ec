"""``fdg.ir.verify.check_ir``: a correct diagram passes, and each invariant of its docstring catches one corruption.

Every corruption is made on a copy of a correct lowered diagram (payloads are frozen: ``dataclasses.replace``); the
test asserts the ``IRError`` names the rule that broke.  The original must stay valid, so a corruption that leaked
into it would fail the last check of each test.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path

import networkx as nx
import pytest

from fdg import api, ir
from fdg.checker.lower import lower
from fdg.ir.verify import IRError, check_ir
from fdg.runtime import Irreps

ROOT = Path(__file__).resolve().parents[2]

# gather, sh, couple with external weights, scatter-sum, scale, add, learned[z] and learned linears, two outputs
SOURCE = """diagram V(mul = 2) {
    input h : mul x (0e + 1o) over node
    input vec : 1o over edge
    input R : weights over edge
    input src : index edge -> node
    input dst : index edge -> node
    input z : index node -> 3
    Y = sh(vec, 1)
    m = couple(h[src], Y) -> mul x (0e + 1o) [mode = uvu, weights = R]
    agg = sum(m, by = dst)
    s = agg * 0.5
    t = s + h
    output out = linear(t) -> mul x (0e + 1o) [weights = learned[z]]
    output u = linear(h) -> mul x 0e
}"""

FUSE = "diagram F() { input a : 2x(0e + 1o)\n input b : 2x(0e + 1o)\n output y = fuse(a, b) -> 2x(0e + 1o) }"
POWER = (
    "diagram P() { input A : 2x(0e + 1o)\n input z : index batch -> 2\n"
    " output B = power(A, 2) -> 2x0e [weights = learned[z]] }"
)

NODE, EDGE = ir.Axis("node"), ir.Axis("edge")


def corrupted(source: str, corrupt: Callable[[ir.Diagram], object]) -> ir.Diagram:
    """A copy of the lowered diagram, corrupted in place by ``corrupt`` (the original is left valid)."""
    good = api.lower_source(source)
    bad = ir.Diagram(good.name, good.params, good.graph.copy())
    corrupt(bad)
    check_ir(good)
    return bad


def set_out(d: ir.Diagram, node: str, out: ir.WireType | None) -> None:
    """Change what ``node`` produces, and the wires it feeds with it (so only the typing rule of ``node`` breaks)."""
    d.graph.nodes[node]["out"] = out
    for _, _, data in d.graph.out_edges(node, data=True):
        data["wire"] = out


def set_op(d: ir.Diagram, node: str, **changes: object) -> None:
    d.graph.nodes[node]["op"] = dataclasses.replace(d.op(node), **changes)


def paths(d: ir.Diagram, node: str) -> tuple[object, ...]:
    op = d.op(node)
    assert isinstance(op, ir.Couple | ir.Linear)
    return op.paths


def with_numel(node: str, numel: int) -> Callable[[ir.Diagram], None]:
    """Give ``node``'s weights another numel, all else equal."""

    def corrupt(d: ir.Diagram) -> None:
        op = d.op(node)
        assert isinstance(op, ir.Couple | ir.Linear | ir.Fuse | ir.Power)
        set_op(d, node, weights=dataclasses.replace(op.weights, numel=numel))

    return corrupt


def edge(d: ir.Diagram, u: str, v: str) -> dict[str, object]:
    ((_, _, data),) = [e for e in d.graph.out_edges(u, data=True) if e[1] == v]
    return data


def feed_output(d: ir.Diagram, output: str) -> None:
    """Make ``output`` feed a new output vertex (added last, so that ``output`` is checked first)."""
    d.graph.add_node("late", op=ir.Output("late", SPAN), out=None)
    d.graph.add_edge(output, "late", port=0, wire=None)


SPAN = api.lower_source(SOURCE).op("h").span

CORRUPTIONS: dict[str, tuple[str, Callable[[ir.Diagram], object], str]] = {
    # rule 1: a DAG whose nodes have a payload and (outputs excepted) a wire type (cycles: see below)
    "non-output without wire": (SOURCE, lambda d: set_out(d, "s", None), "s: only outputs produce no wire"),
    "output with a wire": (SOURCE, lambda d: set_out(d, "out:u", d.out("u")), "out:u: only outputs produce no wire"),
    "output with a consumer": (
        SOURCE,
        lambda d: feed_output(d, "out:u"),
        "out:u: an output has consumers",
    ),
    # rule 2: edges carry port and wire, and the wire is the producer's type
    "edge without wire": (SOURCE, lambda d: edge(d, "agg", "s").pop("wire"), "s: edge without port/wire"),
    "edge without port": (SOURCE, lambda d: edge(d, "agg", "s").pop("port"), "s: edge without port/wire"),
    "wire differs": (
        SOURCE,
        lambda d: edge(d, "agg", "s").update(wire=ir.Feature(NODE, Irreps("2x0e"))),
        "agg -> s: wire 2x0e over node differs from 2x0e+2x1o over node",
    ),
    # rule 3: ports 0..n-1
    "ports with a gap": (SOURCE, lambda d: edge(d, "h", "t").update(port=2), "t: ports [0, 2] are not 0..n-1"),
    # rule 4: typing of each vertex
    "gather axis": (SOURCE, lambda d: set_out(d, "_m_1", ir.Feature(NODE, Irreps("2x0e+2x1o"))), "gather typing"),
    "scatter axis": (SOURCE, lambda d: set_out(d, "agg", ir.Feature(EDGE, Irreps("2x0e+2x1o"))), "scatter typing"),
    "scale type": (SOURCE, lambda d: set_out(d, "s", ir.Feature(NODE, Irreps("2x0e+2x1e"))), "scale typing"),
    "add type": (SOURCE, lambda d: set_out(d, "t", ir.Feature(NODE, Irreps("2x0e+2x1e"))), "add typing"),
    "sh of a non-vector": (SOURCE, lambda d: set_out(d, "vec", ir.Feature(EDGE, Irreps("1e"))), "sh input"),
    "sh degree": (SOURCE, lambda d: set_op(d, "Y", lmax=2), "sh output"),
    "couple type": (SOURCE, lambda d: set_out(d, "m", ir.Feature(NODE, Irreps("2x0e+2x1o"))), "couple typing"),
    "linear type": (SOURCE, lambda d: set_out(d, "u", ir.Feature(NODE, Irreps("3x0e"))), "linear output type"),
    # rule 5: paths in e3nn's order and normalization, numel from the paths
    "couple path dropped": (
        SOURCE,
        lambda d: set_op(d, "m", paths=paths(d, "m")[:-1]),
        "couple paths differ from the e3nn enumeration",
    ),
    "couple paths reordered": (
        SOURCE,
        lambda d: set_op(d, "m", paths=paths(d, "m")[::-1]),
        "couple paths differ from the e3nn enumeration",
    ),
    "couple numel": (SOURCE, with_numel("m", 9), "couple numel"),
    "linear path dropped": (SOURCE, lambda d: set_op(d, "out", paths=paths(d, "out")[:1]), "linear paths"),
    "linear numel": (SOURCE, with_numel("u", 5), "linear numel"),
    "fuse numel": (FUSE, with_numel("y", 1), "fuse numel"),
    "power numel": (POWER, with_numel("B", 1), "power numel"),
    # rule 6: weight operands
    "external weights numel": (
        SOURCE,
        lambda d: set_out(d, "R", ir.WeightsWire(EDGE, 9)),
        "external weights: a weights wire",
    ),
    "learned[z] count": (
        SOURCE,
        lambda d: set_op(d, "out", weights=ir.Weights("per_index", 8, 4, "z")),
        "learned[z] index range",
    ),
    "learned weights with an operand": (
        SOURCE,
        lambda d: d.graph.add_edge("z", "u", port=1, wire=d.out("z")),
        "no weight operand",
    ),
    # rule 7: unique input and output names, at least one output
    "duplicate input": (SOURCE, lambda d: set_op(d, "vec", name="h"), "duplicate in:h"),
    "duplicate output": (SOURCE, lambda d: set_op(d, "out:u", name="out"), "duplicate out:out"),
    "no output": (SOURCE, lambda d: d.graph.remove_nodes_from(["out:out", "out:u"]), "no output"),
}


@pytest.mark.parametrize("case", list(CORRUPTIONS))
def test_corruption_is_caught(case: str) -> None:
    source, corrupt, message = CORRUPTIONS[case]
    with pytest.raises(IRError) as err:
        check_ir(corrupted(source, corrupt))
    assert message in str(err.value)


def test_vertex_errors_name_the_vertex_and_its_operands() -> None:
    """A typing violation says which vertex, what it is, its operand types and its declared output."""
    bad = corrupted(SOURCE, lambda d: set_out(d, "s", ir.Feature(NODE, Irreps("2x0e+2x1e"))))
    with pytest.raises(IRError) as err:
        check_ir(bad)
    assert str(err.value) == ("s (scale[0.5]): scale typing; operands ['2x0e+2x1o over node'], out 2x0e+2x1e over node")


def make_cycle(d: ir.Diagram) -> None:
    d.graph.add_edge("t", "agg", port=2, wire=d.out("t"))


# product bug: the message attaches ir.dump(diagram), whose topological order raises on the cyclic graph
@pytest.mark.xfail(raises=nx.NetworkXUnfeasible, strict=True, reason="check_ir's cycle message dumps a cyclic graph")
def test_cycle_is_an_ir_error() -> None:
    with pytest.raises(IRError, match=r"^graph has a cycle"):
        check_ir(corrupted(SOURCE, make_cycle))


def test_cycle_is_rejected() -> None:
    """Whatever the exception, a cyclic graph never passes."""
    with pytest.raises((IRError, nx.NetworkXUnfeasible)):
        check_ir(corrupted(SOURCE, make_cycle))


# product bug: rule 1 ("every node has op, a vertex payload, and out") is not checked for op / crashes for out
@pytest.mark.xfail(strict=True, reason="check_ir accepts a node without an op payload")
def test_node_without_payload_is_an_ir_error() -> None:
    with pytest.raises(IRError):
        check_ir(corrupted(SOURCE, lambda d: d.graph.nodes["s"].pop("op")))


@pytest.mark.xfail(raises=KeyError, strict=True, reason="check_ir raises KeyError for a node without out")
def test_node_without_out_is_an_ir_error() -> None:
    with pytest.raises(IRError):
        check_ir(corrupted(SOURCE, lambda d: d.graph.nodes["vec"].pop("out")))


def test_valid_diagram_passes_and_is_not_mutated() -> None:
    """``check_ir`` only reads: the graph is the same before and after."""
    d = api.lower_source(SOURCE)
    before = (list(d.graph.nodes(data=True)), list(d.graph.edges(keys=True, data=True)))
    check_ir(d)
    assert (list(d.graph.nodes(data=True)), list(d.graph.edges(keys=True, data=True))) == before


def test_fuse_and_power_diagrams_pass() -> None:
    for source in (FUSE, POWER):
        check_ir(api.lower_source(source))


def _diagrams() -> list[tuple[str, str]]:
    found = []
    for path in sorted((ROOT / "diagrams").glob("*.fdg")):
        found += [(path.name, d.name.id) for d in api.library(path).root.diagrams]
    return found


@pytest.mark.parametrize(("file", "name"), _diagrams())
def test_every_shipped_diagram_verifies(file: str, name: str) -> None:
    """Each diagram of ``diagrams/`` verifies as the checker lowers it, and after the passes."""
    files = api.library(ROOT / "diagrams" / file)
    raw = lower(files.root, name, {}, files).diagram
    check_ir(raw)
    check_ir(api.lower_source(ROOT / "diagrams" / file, name))


def test_there_are_shipped_diagrams() -> None:
    assert len(_diagrams()) >= 12
