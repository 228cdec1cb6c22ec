"""``fdg.planning.grouping.group``: which couplings the grouped lowering takes, and its blocks for tiny cases by hand.

A block is the paths from one input irrep of ``a`` into one output irrep: one batched matmul.
"""

from __future__ import annotations

import math
import warnings

import pytest

from fdg import api, ir
from fdg.planning.grouping import CHUNK, CHUNK_UVW, Block, Grouped, group, kernel_blocks
from fdg.planning.pin import Pin
from fdg.planning.plan import make_plan


def grouping(inputs: str, statement: str) -> tuple[ir.Couple, Grouped | None]:
    d = api.lower_source(f"diagram D() {{ {inputs}\n output y = {statement} }}")
    op = d.op("y")
    assert isinstance(op, ir.Couple)
    a, b = (d.out(n) for n in d.operands("y")[:2])
    assert isinstance(a, ir.Feature) and isinstance(b, ir.Feature)
    return op, group(op, a, b)


SH = "input a : 2x0e + 2x1o over edge\n input b : 0e + 1o over edge\n input R : weights over edge\n"
SH += " input z : index edge -> 3"
OUT = "2x0e + 2x1o"


@pytest.mark.parametrize(
    ("inputs", "statement", "mode"),
    [
        (SH, f"couple(a, b) -> {OUT} [mode = uvu]", "uvu"),
        (SH, f"couple(a, b) -> {OUT} [mode = uvu, weights = R]", "uvu"),
        (SH, f"couple(a, b) -> {OUT} [mode = uvu, weights = learned[z]]", "uvu"),
        (SH, "couple(a, b) -> 3x0e + 1x1o [mode = uvw]", "uvw"),
        # no grouping: uvu without weights, uvw with per-row or per-species weights, the other modes
        (SH, f"couple(a, b) -> {OUT} [mode = uvu, weights = none]", None),
        (SH, "couple(a, b) -> 3x0e + 1x1o [mode = uvw, weights = R]", None),
        (SH, "couple(a, b) -> 3x0e + 1x1o [mode = uvw, weights = learned[z]]", None),
        (SH, "couple(a, b) -> 0e + 1o [mode = uvv]", None),
        (SH, "couple(a, b) -> 2x0e + 2x1o [mode = uvuv]", None),
        ("input a : 2x0e + 2x1o\n input b : 2x0e + 2x1o", f"couple(a, b) -> {OUT} [mode = uuu]", None),
        ("input a : 2x0e + 2x1o\n input b : 2x0e + 2x1o", "couple(a, b) -> 3x0e [mode = uuw]", None),
        # b must have multiplicity one everywhere
        ("input a : 2x0e + 2x1o\n input b : 2x0e + 1o", f"couple(a, b) -> {OUT} [mode = uvu]", None),
        ("input a : 2x0e + 2x1o\n input b : 0e + 2x1o", "couple(a, b) -> 3x0e + 1x1o [mode = uvw]", None),
    ],
)
def test_which_couplings_group(inputs: str, statement: str, mode: str | None) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # inputs the statement leaves unused
        _, g = grouping(inputs, statement)
    assert (g.mode if g is not None else None) == mode


def test_uvu_blocks_by_hand() -> None:
    """``2x0e + 2x1o (x) 0e + 1o + 2e -> 2x0e + 2x1o``, uvu.  Paths in e3nn order (i1, i2 -> i_out):
    p0 0e 0e -> 0e, p1 0e 1o -> 1o, p2 1o 0e -> 1o, p3 1o 1o -> 0e, p4 1o 2e -> 1o (1o 1o -> 1e: not an output).
    Blocks, sorted by (output irrep, input irrep): (0e <- 0e: p0), (0e <- 1o: p3), (1o <- 0e: p1), (1o <- 1o: p2, p4).
    """
    op, g = grouping("input a : 2x0e + 2x1o\n input b : 0e + 1o + 2e", f"couple(a, b) -> {OUT} [mode = uvu]")
    assert [(p.i1, p.i2, p.i_out) for p in op.paths] == [(0, 0, 0), (0, 1, 1), (1, 0, 1), (1, 1, 0), (1, 2, 1)]
    assert g is not None
    assert g.blocks == (
        Block(i_in=0, i_out=0, paths=(0,), mul=2, d_in=1, d_out=1),
        Block(i_in=1, i_out=0, paths=(3,), mul=2, d_in=3, d_out=1),
        Block(i_in=0, i_out=1, paths=(1,), mul=2, d_in=1, d_out=3),
        Block(i_in=1, i_out=1, paths=(2, 4), mul=2, d_in=3, d_out=3),
    )
    assert (g.mode, g.rows, g.columns, g.chunk) == ("uvu", 1 + 3 + 5, 2 * 1 + 2 * 3, CHUNK)
    # only the one-path block shrinking 3 -> 1 multiplies its weights after the matmul
    assert [blk.weights_after for blk in g.blocks] == [False, True, False, False]
    assert [blk.width for blk in g.blocks] == [1, 3, 1, 6]
    # per block, per path: (l1, l2, l3, offset of b's irrep in b, alpha); alpha = sqrt((2l3+1) / paths into l3)
    assert [[p[:4] for p in blk] for blk in g.recipe] == [
        [(0, 0, 0, 0)],
        [(1, 1, 0, 1)],
        [(0, 1, 1, 1)],
        [(1, 0, 1, 0), (1, 2, 1, 4)],
    ]
    alphas = [p[4] for blk in g.recipe for p in blk]
    assert alphas == pytest.approx([1 / math.sqrt(2), 1 / math.sqrt(2), 1.0, 1.0, 1.0], rel=1e-15)
    # non-zeros of the CG tables: 000 has 1, 110 / 011 / 101 have 3, (1, 2, 1) has 11
    assert g.nonzeros == 1 + 3 + 3 + 3 + 11
    # the kernel's weight offsets: each path holds mul = 2 weights, p0..p4 at 0, 2, 4, 6, 8
    assert kernel_blocks(op, g) == ((0, 0, (0,)), (1, 0, (6,)), (0, 1, (2,)), (1, 1, (4, 8)))


def test_uvw_blocks_by_hand() -> None:
    """``2x0e + 2x1o (x) 0e + 1o -> 3x0e + 1x1o``, uvw with shared weights: one block per path, by input irrep."""
    op, g = grouping("input a : 2x0e + 2x1o\n input b : 0e + 1o", "couple(a, b) -> 3x0e + 1x1o [mode = uvw]")
    assert [(p.i1, p.i2, p.i_out, p.shape) for p in op.paths] == [
        (0, 0, 0, (2, 1, 3)),
        (0, 1, 1, (2, 1, 1)),
        (1, 0, 1, (2, 1, 1)),
        (1, 1, 0, (2, 1, 3)),
    ]
    assert g is not None
    assert g.blocks == (
        Block(i_in=0, i_out=0, paths=(0,), mul=2, d_in=1, d_out=1),
        Block(i_in=0, i_out=1, paths=(1,), mul=2, d_in=1, d_out=3),
        Block(i_in=1, i_out=1, paths=(2,), mul=2, d_in=3, d_out=3),
        Block(i_in=1, i_out=0, paths=(3,), mul=2, d_in=3, d_out=1),
    )
    assert (g.mode, g.rows, g.columns, g.chunk, g.nonzeros) == ("uvw", 4, 8, CHUNK_UVW, 1 + 3 + 3 + 3)


def test_the_plan_holds_the_groups_with_names() -> None:
    """The plan keeps the blocks ``group`` found, adding the Python names of the method and its buffers."""
    d = api.lower_source("diagram D() { input a : 2x0e + 2x1o\n input b : 0e + 1o + 2e\n"
                         f" output m = couple(a, b) -> {OUT} [mode = uvu] }}")  # fmt: skip
    plan = make_plan(d, {"m": Pin("grouped")})
    held = plan.grouped["m"]
    _, found = grouping("input a : 2x0e + 2x1o\n input b : 0e + 1o + 2e", f"couple(a, b) -> {OUT} [mode = uvu]")
    assert found is not None
    assert (held.blocks, held.recipe, held.nonzeros) == (found.blocks, found.recipe, found.nonzeros)
    assert (held.method, held.matrix, held.layout_a, held.layout_y, held.table) == (
        "m_slice",
        "m_cg",
        "m_cg_a",
        "m_cg_y",
        "m_cg_table",
    )
    assert (held.sparse, held.fused) == (False, False)
    sparse = make_plan(d, {"m": Pin("grouped+sparse")}).grouped["m"]
    assert (sparse.sparse, sparse.fused, sparse.blocks) == (True, False, found.blocks)
