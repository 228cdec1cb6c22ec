"""Whole-pipeline fuzzing: random and mutated programs only ever fail with an FdgError, and fast.

Every program goes through ``fdg.check``; when that passes, through ``fdg.emit`` and ``fdg.compile``
for each of its diagrams.  A compiled module is then called once on random inputs of the shapes
its ``inputs`` table describes, and its outputs must have the shapes its ``outputs`` table says.

The programs are the diagrams of ``diagrams/`` and the examples of the language reference, mutated
token by token (identifiers swapped, numbers, irreps, parities, modes and axes changed, statements
deleted or duplicated), and small diagrams generated from scratch.  Runs are derandomized so that
CI sees the same examples every time.
"""

from __future__ import annotations

import re
import time
import warnings
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sources import EXAMPLES

import fdg
from fdg.api import FdgWarning
from fdg.errors import FdgError
from fdg.frontend.parser import parse
from fdg.runtime import Irreps

TESTS = Path(__file__).parent
CORPUS = [p.read_text() for p in sorted((TESTS.parent / "diagrams").glob("*.fdg"))] + EXAMPLES
# the catalog of invalid programs is worth mutating too: one edit away from valid, or from another error
CATALOG = [p.read_text() for folder in ("check", "warnings") for p in sorted((TESTS / "errors" / folder).glob("*.fdg"))]
DEADLINE_S = 5.0  # catches hangs and blow-ups; the first example also pays imports (torch._dynamo, ~2 s)
SIZE = 3  # every named axis gets this many rows when a compiled module is run

FUZZ = settings(
    max_examples=300,
    deadline=None,  # checked by hand below, so that a slow example fails with its program shown
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
)

# ---------------------------------------------------------------- running one program


def run_pipeline(text: str) -> None:
    """Check, emit, compile and run ``text``; anything but an FdgError escaping is a bug in fdg."""
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FdgWarning)
        try:
            fdg.check(text)
            names = [d.name.id for d in parse(text).diagrams]
        except FdgError as err:
            str(err)  # formatting the diagnostic must not fail either
            names = []
        for name in names:
            fdg.emit(text, name)  # a program that checks must compile: every construct has code generation
            run_module(fdg.compile(text, name))
    elapsed = time.perf_counter() - start
    assert elapsed < DEADLINE_S, f"the pipeline took {elapsed:.2f} s on:\n{text}"


FEATURE = re.compile(r"(?P<irreps>.+) over (?P<axis>\w+)")
INDEX = re.compile(r"index (?P<axis>\w+) -> (?P<target>\w+)")
WEIGHTS = re.compile(r"weights\[(?P<numel>\d+)\] over (?P<axis>\w+)")


def size(axis: str) -> int:
    return int(axis) if axis.isdigit() else SIZE


def random_input(description: str) -> torch.Tensor:
    if m := INDEX.fullmatch(description):
        return torch.randint(0, size(m["target"]), (size(m["axis"]),))
    if m := WEIGHTS.fullmatch(description):
        return torch.randn(size(m["axis"]), int(m["numel"]))
    m = FEATURE.fullmatch(description)
    assert m is not None, f"unexpected input description {description!r}"
    return torch.randn(size(m["axis"]), Irreps(m["irreps"]).dim)


def output_shape(description: str) -> tuple[int, int]:
    m = FEATURE.fullmatch(description)
    assert m is not None, f"unexpected output description {description!r}"
    return size(m["axis"]), Irreps(m["irreps"]).dim


def run_module(module: torch.nn.Module) -> None:
    inputs = {name: random_input(d) for name, d in module.inputs.items()}
    with torch.no_grad():
        result = module(**inputs)
    outputs = list(module.outputs.values())
    results = [result] if len(outputs) == 1 else list(result)
    assert [tuple(r.shape) for r in results] == [output_shape(d) for d in outputs]
    assert all(torch.isfinite(r).all() for r in results)


# ---------------------------------------------------------------- token-level mutations of real programs

TOKEN = re.compile(r"#[^\n]*|\s+|\d+x\d+[A-Za-z]\b|\d+[A-Za-z]\b|\d+\.\d*|\d+|[A-Za-z_]\w*|->|//|.", re.S)
IRREP = re.compile(r"(\d+x)?\d+[eoy]")
NUMBER = re.compile(r"\d+(\.\d*)?")
KEYWORDS = {"diagram", "input", "output", "over", "index", "weights", "use", "lmax", "x", "sh"}
MODES = ["uvw", "uvu", "uuu", "uvv", "uuw", "uvuv", "full", "channelwise", "elementwise", "outer", "uvx"]
AXES = ["node", "edge", "batch", "graph", "species", "4", "mul"]
WORDS = ["couple", "linear", "sh", "sum", "fuse", "power", "learned", "none", "by", "mode", "tree", "nope"]
NUMBERS = [
    "0",
    "1",
    "2",
    "3",
    "4",
    "5",
    "-1",
    "0.5",
    "1.0",
    "16",
    "21",
    "64",
]  # small: mul = 1000 with uvw is gigabytes

Edit = tuple[str, int, int]


def identifiers(tokens: list[str]) -> list[str]:
    return sorted({t for t in tokens if re.fullmatch(r"[A-Za-z_]\w*", t) and t not in KEYWORDS})


def mutate(text: str, edits: list[Edit]) -> str:
    """Apply ``(kind, where, choice)`` edits; ``where`` and ``choice`` are reduced modulo what is available."""
    for kind, where, choice in edits:
        if kind in ("delete", "duplicate"):
            lines = text.split("\n")
            body = [i for i, line in enumerate(lines) if re.match(r"\s+(input|output|\w+\s*=)", line)]
            if body:
                i = body[where % len(body)]
                lines[i : i + 1] = [] if kind == "delete" else [lines[i], lines[i]]
            text = "\n".join(lines)
            continue
        tokens = TOKEN.findall(text)
        names = identifiers(tokens)
        if kind == "identifier":
            spots = [i for i, t in enumerate(tokens) if t in names]
            pool = names + WORDS
        elif kind == "number":
            spots = [i for i, t in enumerate(tokens) if NUMBER.fullmatch(t)]
            pool = NUMBERS
        elif kind == "irrep":
            spots = [i for i, t in enumerate(tokens) if IRREP.fullmatch(t)]
            pool = [f"{m}{deg}{p}" for m in ("", "2x") for deg in range(4) for p in "eoy"]
        elif kind == "mode":
            spots = [i for i, t in enumerate(tokens) if t in MODES or t in ("learned", "none")]
            pool = [*MODES, "learned", "none"]
        else:  # axis: after `over`, and both ends of `index A -> B`
            spots = [i for i in range(len(tokens)) if _is_axis(tokens, i)]
            pool = AXES
        if spots:
            tokens[spots[where % len(spots)]] = pool[choice % len(pool)]
        text = "".join(tokens)
    return text


def _is_axis(tokens: list[str], i: int) -> bool:
    if not re.fullmatch(r"\w+", tokens[i]):
        return False
    before = [t for t in tokens[:i] if not t.isspace()][-3:]
    return before[-1:] in (["over"], ["index"]) or (len(before) == 3 and before[0] == "index" and before[2] == "->")


EDITS = st.lists(
    st.tuples(
        # type-level edits weighted up: they keep more programs valid, so more reach code generation
        st.sampled_from(
            ["number", "number", "irrep", "irrep", "mode", "mode", "axis", "identifier", "delete", "duplicate"]
        ),
        st.integers(0, 1000),
        st.integers(0, 1000),
    ),
    min_size=1,
    max_size=3,
)


@FUZZ
@given(st.sampled_from(CORPUS) | st.sampled_from(CATALOG), EDITS)
def test_mutated_programs_fail_only_with_fdg_errors(text: str, edits: list[Edit]) -> None:
    run_pipeline(mutate(text, edits))


@pytest.mark.parametrize("text", CORPUS, ids=range(len(CORPUS)))
def test_unmutated_corpus_goes_through(text: str) -> None:
    run_pipeline(text)


# ---------------------------------------------------------------- small programs from scratch

IRREPS = ["0e", "1o", "0e + 1o", "0e + 1o + 2e", "1e + 2o", "mul x 0e", "mul x (0e + 1o)", "mul x (0e + 1o + 2e)",
          "2x0e + mul x 1o", "sh(2)", "mul x sh(1)"]  # fmt: skip
TARGETS = [*IRREPS, "lmax 1", "lmax 2"]
WEIGHT_OPTIONS = ["", "weights = none", "weights = learned"]
#: weights that fit a vertex over the axis (R is over edge, z indexes nodes); the other axis' word rarely
FITTING_WEIGHTS = {
    "edge": ["weights = R"] * 3 + ["weights = learned[z]"],
    "node": ["weights = learned[z]"] * 3 + ["weights = R"],
}


@st.composite
def programs(draw: st.DrawFn) -> str:
    """A small diagram: a few typed inputs, then random vertices over the wires defined so far.

    Operands are mostly chosen to sit on the right axis (gathering node wires onto edges where
    needed), so that a good share of the programs type-check and reach code generation.
    """
    mul = draw(st.integers(1, 4))
    lines = [f"diagram Random(mul = {mul}) {{"]
    axis_of: dict[str, str] = {}  # wire name -> axis
    for i in range(draw(st.integers(1, 3))):
        axis_of[f"h{i}"] = draw(st.sampled_from(["node", "edge"]))
        lines.append(f"    input h{i} : {draw(st.sampled_from(IRREPS))} over {axis_of[f'h{i}']}")
    lines += [
        "    input vec : 1o over edge",
        "    input src : index edge -> node",
        "    input dst : index edge -> node",
        "    input z : index node -> 3",
        "    input R : weights over edge",
    ]
    axis_of["vec"] = "edge"

    def operand(axis: str | None = None) -> tuple[str, str]:
        """A wire, or a node wire gathered onto edges, and its axis: ``axis`` unless the draw says otherwise."""
        choices = list(axis_of.items())
        choices += [(f"{name}[{i}]", "edge") for name, a in axis_of.items() if a == "node" for i in ("src", "dst")]
        fitting = [c for c in choices if c[1] == axis]
        if axis is None or not fitting or draw(st.integers(0, 9)) == 0:
            fitting = choices
        return draw(st.sampled_from(sorted(fitting)))

    for i in range(draw(st.integers(1, 5))):
        kind = draw(st.sampled_from(["couple", "couple", "linear", "sh", "sum", "scale", "add"]))
        target = draw(st.sampled_from(TARGETS))
        first, axis = operand()
        if kind == "couple":
            options = [
                f"mode = {draw(st.sampled_from(MODES[:6]))}",
                draw(st.sampled_from(WEIGHT_OPTIONS + FITTING_WEIGHTS[axis])),
            ]
            expr = f"couple({first}, {operand(axis)[0]}) -> {target} [{', '.join(o for o in options if o)}]"
        elif kind == "linear":
            weights = draw(
                st.sampled_from(["", "", " [weights = learned[z]]" if axis == "node" else " [weights = none]"])
            )
            expr = f"linear({first}) -> {target}{weights}"
        elif kind == "sh":
            first, axis = draw(st.sampled_from([("vec", "edge"), ("vec", "edge"), (first, axis)]))
            expr = f"sh({first}, {draw(st.integers(0, 3))})"
        elif kind == "sum":
            first, _ = operand("edge")
            expr, axis = f"sum({first}, by = {draw(st.sampled_from(['src', 'dst']))})", "node"
        elif kind == "scale":
            expr = f"{draw(st.sampled_from(['0.5', '2', '-1', 'mul']))} * {first}"
        else:
            expr = f"{first} + {operand(axis)[0]}"
        axis_of[f"v{i}"] = axis
        lines.append(f"    v{i} = {expr}")
    for name in draw(st.lists(st.sampled_from(sorted(axis_of)), min_size=1, max_size=2, unique=True)):
        lines.append(f"    output {name}")
    lines.append("}")
    return "\n".join(lines)


@FUZZ
@given(programs())
def test_random_programs_fail_only_with_fdg_errors(text: str) -> None:
    run_pipeline(text)
