"""Stage 4, the passes: the checked IR to an equivalent, smaller IR.

Takes an :class:`~fdg.ir.Diagram` from the checker.  Returns a new ``Diagram`` (the input is never mutated): each
pass is a pure function ``ir.Diagram -> ir.Diagram`` in its own module, and :data:`PASSES` lists them in the order
:func:`run` applies them.  Guarantees: the result computes the same outputs from the same inputs and weights, and
it passes ``check_ir`` (tests run the verifier after each pass).
"""

from __future__ import annotations

from collections.abc import Callable

from fdg import ir
from fdg.passes.fold_scale import fold_scale
from fdg.passes.prune import prune

Pass = Callable[[ir.Diagram], ir.Diagram]

#: every pass, in order
PASSES: tuple[tuple[str, Pass], ...] = (
    ("prune", prune),
    ("fold_scale", fold_scale),
)


def run(diagram: ir.Diagram, check: Callable[[ir.Diagram], None] | None = None) -> ir.Diagram:
    """Apply every pass in order; ``check`` (e.g. ``verify.check_ir``) runs after each one."""
    for _, apply in PASSES:
        diagram = apply(diagram)
        if check is not None:
            check(diagram)
    return diagram
