"""Stage 6, the cost model: priced steps and the time estimate that ranks lowerings.

Takes plan data (a vertex, its wire types, the lowering's blocks).  Returns priced :class:`Step` values: FLOPs,
bytes and result sizes per row of an axis, forward and backward (:mod:`fdg.cost.model`, the constants and totals;
:mod:`fdg.cost.steps`, the steps of each lowering).  Guarantees: prices are deterministic functions of their
arguments, and they rank plans; they are not promises of absolute times (``benchmarks/`` measures those).
"""

from fdg.cost.model import (
    BANDWIDTH,
    ELEMENT,
    FLOP_RATE,
    LAUNCH,
    Step,
    Totals,
    contraction,
    evaluate,
    launches,
    rows,
    seconds,
)

__all__ = [
    "BANDWIDTH",
    "ELEMENT",
    "FLOP_RATE",
    "LAUNCH",
    "Step",
    "Totals",
    "contraction",
    "evaluate",
    "launches",
    "rows",
    "seconds",
]
