"""Constant folding of a ``fuse``: the CG chain of every path pre-contracted into one generalized CG tensor.

A fuse's paths are chains of 3j tensors along a tree; nothing but constants sits between the inputs and the
weights, so each chain can be contracted once, at build time, into ``C_p[i_0, ..., i_{n-1}, M]``
(``fdg.runtime.fusion_tables.folded_table``, from the exact 3j tables).  Weights are per path, so the folding is per
path; learned weights are then folded in once per call (``W[u] = sum_p w[p, u] C_p``) and a row costs one product
per non-zero of ``W`` per channel, while per-row weights multiply each path's block.  The folded form evaluates no
tree, so it needs no recoupling either.

It is used when, and only when, the cost model estimates it cheaper than the best tree at the representative size
(``fusion.plan_fuse``): folding removes the intermediate values and their memory traffic, but a chain has more
non-zeros than its links once several paths share a link, and the per-row work grows with the product of the
inputs' dimensions.
"""

from __future__ import annotations

import math

from fdg.planning.fuse.products import Evaluation, evaluation_steps, price_product, weights_mode
from fdg.runtime.fusion_paths import FuseSpec, fuse_layout
from fdg.runtime.fusion_tables import FuseTable, folded_table

#: most entries the paths' chains may hold together (their dense blocks): beyond, building the folded table (or the
#: recoupling matrix, from the same chains) would take seconds at construction, so neither is a candidate
MAX_FOLDED = 1 << 21


def chain_entries(basis: FuseSpec) -> int:
    """Entries of every path's chain of 3j tensors, dense: ``sum_p prod(2 l_k + 1) * (2 L + 1)``."""
    layout = fuse_layout(basis)
    return sum(
        math.prod(layout.nodes[k].entries[i].ir.dim for k, i in enumerate(p.leaves)) * layout.outputs[p.i_out].dim
        for p in layout.paths
    )


def folded(
    value: str,
    kind: str,
    basis: FuseSpec,
    muls: tuple[int, ...],
    axis: str,
    rows: int,
    labels: tuple[str, ...],
    form: str | None = None,
) -> Evaluation | None:
    """The folded evaluation of a fuse, priced; ``None`` when its table would be too large to build."""
    n = len(muls)
    if chain_entries(basis) > MAX_FOLDED:
        return None
    mode = weights_mode(kind)
    table = folded_table(basis, summed=mode == "sum")
    label = f"({', '.join(labels)}) folded"
    product = price_product(
        value, basis, FuseTable("folded"), tuple(range(n)), label, muls, table, mode, axis, rows, form
    )
    steps = evaluation_steps(value, basis, muls, kind, 0, (product,), axis)
    return Evaluation(basis, True, 0, (product,), steps)


def decision(candidates: dict[str, Evaluation], estimates: dict[str, float], chosen: str) -> str:
    """The folding decision in words, for the report."""
    trees = {k: v for k, v in estimates.items() if k != "folded"}
    if "folded" not in candidates:
        return f"not folded: its paths' chains hold more than {MAX_FOLDED} entries, too many to build"
    product = candidates["folded"].products[0]
    form = f"{'sparse' if product.sparse else 'dense'}, {product.nnz} non-zeros"
    if not trees:
        return f"folded ({form}): no tree spans the same paths"
    best = min(trees, key=lambda k: trees[k])
    f_ms, t_ms = estimates["folded"] * 1e3, trees[best] * 1e3
    if chosen == "folded":
        return f"folded ({form}): estimated {f_ms:.3g} ms against {t_ms:.3g} ms for the best {best}"
    return f"not folded: the folded tensor ({form}) is estimated at {f_ms:.3g} ms against {t_ms:.3g} ms for {best}"
