"""The plan of one ``power`` vertex: the run-time module it builds, and its priced steps next to MACE's.

``power(a, nu) -> IRREPS`` compiles to one ``fdg.runtime.SymmetricPower`` (a submodule of the generated module), which
evaluates the kept coupled trees of the minimal basis by CG couplings (``fdg.runtime.power_program``).  The plan
prices that program step by step, per row (node) of the vertex's axis, forward and backward:

* the channels of ``a`` laid out components first, and the result back in ``mul_ir`` (copies);
* the weights turned into tree weights (``weights @ transform``, once per weight set: batch independent unless the
  weights are an input), and for ``learned[z]`` each node's set gathered;
* per coupling ``r = F (u x x[c])``: the outer product and the matrix product with the CG table ``F`` (or ``F`` with
  one operand first, then the product with the other); per last coupling, the weighted sum of the trees' parents;
* the trees of degree 1, weighted.

Bytes count what each step reads and writes (every intermediate goes through memory: the module does not slice).

The *naive baseline* is MACE's ``SymmetricContraction``: per output irrep, dense U tensors ``[2L+1, d^k, K_k]`` (``d``
components per channel, ``K_k`` MACE's over-complete path count: every left-coupled chain over *ordered* tuples of
irreps, with natural-parity intermediates only at correlation 4, as MACE builds them), contracted with each node's
weights and then with ``x`` one index at a time, from degree ``nu`` down (its Horner scheme).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from fdg import ir
from fdg.cost import ELEMENT, Step
from fdg.runtime import Irrep, Irreps
from fdg.runtime.power_program import PowerProgram, power_program


@dataclass(frozen=True)
class PowerPlan:
    """One ``power`` vertex: the submodule ``self.{module}`` and what the report says about it."""

    module: str  # attribute of the SymmetricPower submodule
    irreps_in: Irreps
    nu: int
    irreps_out: Irreps
    species: int | None  # learned[z]: the range of z
    trees: int  # weights per channel and weight set (the dimension of the function space, per channel)
    mace_weights: int  # MACE's weights per channel and element
    steps: tuple[Step, ...]
    baseline: tuple[Step, ...]

    def line(self, name: str) -> str:
        """The report's line about this power."""
        return (
            f"power {name}: {self.trees} weights per channel (the dimension of its function space; MACE's basis has "
            f"{self.mace_weights}), evaluated as kept coupled trees; baseline: MACE's dense U-tensor contraction"
        )


def plan_power(value: str, op: ir.Power, a: ir.Feature, module: str) -> PowerPlan:
    """Price the program of ``op`` (built here once and cached, so the module's construction reuses it)."""
    V, blocks = a.irreps.channel(), tuple(ir for _, ir in op.irreps_out)
    program = power_program(V, op.nu, blocks)
    mul = op.irreps_out[0].mul
    species = op.weights.count if op.weights.kind == "per_index" else None
    trees = len(program.transform)
    mace = sum(mace_path_count(V, k, ir) for ir in blocks for k in range(1, op.nu + 1))
    axis = a.axis.name
    steps = program_steps(value, program, mul, op.weights.kind, axis, species)
    base = mace_steps(value, V, op.nu, blocks, mul, species, axis)
    return PowerPlan(module, a.irreps, op.nu, op.irreps_out, species, trees, mace, steps, base)


def _step(value: str, what: str, lowering: str, axis: str, flops: float, moved: float, out: int, **kw: int) -> Step:
    """A step whose backward costs ``backward_flops`` (given in ``kw``, else the forward's) and twice its bytes."""
    backward = kw.pop("backward", flops)
    return Step(value, what, lowering, axis, flops, moved, out, backward, 2 * moved, **kw)


def _bilinear(value: str, what: str, c: int, R: int, P: int, A: int, order: str, axis: str) -> list[Step]:
    """A coupling ``r[R] = F[R, P, A] u[P] x[A]`` per channel in its order: an elementwise step and a matrix product."""
    mm = 2 * R * P * A * c  # forward; the backward multiplies by F^T once (F is constant)
    if order == "outer":
        return [
            _step(value, f"{what}: u x x [{P}x{A}]", "elementwise", axis, P * A * c, ELEMENT * c * (P + A + P * A),
                  c * P * A, backward=4 * P * A * c),
            _step(value, f"{what}: F [{R}x{P * A}] @", "mm", axis, mm, ELEMENT * c * (P * A + R), c * R),
        ]  # fmt: skip
    first, other = (A, P) if order == "x" else (P, A)  # F meets x (or u) first, then the product with the other
    name, rest = ("x", "u") if order == "x" else ("u", "x")
    return [
        _step(value, f"{what}: F @ {name} [{R * other}x{first}]", "mm", axis, mm, ELEMENT * c * (first + R * other),
              c * R * other),
        _step(value, f"{what}: (F {name}) . {rest}, sum over [{other}]", "elementwise", axis, 2 * R * other * c,
              ELEMENT * c * (R * other + other + R), c * R, backward=3 * R * other * c, launches=2),
    ]  # fmt: skip


def program_steps(
    value: str, p: PowerProgram, c: int, weights: str, axis: str, species: int | None
) -> tuple[Step, ...]:
    """The steps of ``SymmetricPower`` running ``p`` with ``c`` channels (see the module docstring)."""
    d, trees, out = p.irreps.dim, len(p.transform), sum(ir.dim for ir in p.blocks)
    per_row = weights == "input"
    sets = 1 if per_row else species or 1  # weight sets turned into tree weights: per row, or once per call
    steps = [
        _step(value, f"tree weights: w @ transform [{trees}x{trees}]", "dense", axis if per_row else "",
              2 * sets * trees * trees * c, 2 * ELEMENT * sets * trees * c, sets * trees * c if per_row else 0),
        _step(value, f"channels first [{d}, n, {c}]", "elementwise", axis, 0, 2 * ELEMENT * d * c, d * c, launches=2),
    ]  # fmt: skip
    if species is not None:
        steps.append(_step(value, f"tree weights of each node's species [{trees}, {c}]", "gather", axis, 0,
                           2 * ELEMENT * trees * c, trees * c, backward=trees * c))  # fmt: skip
    for step in p.couplings:
        ir_x, R = p.leaves[step.copy], sum(ir.dim for ir in step.irreps)
        what = f"{step.parent_irrep} x {ir_x} -> {'+'.join(map(str, step.irreps))}"
        steps += _bilinear(value, what, c, R, step.parent_irrep.dim, ir_x.dim, step.order, axis)
    for final in p.finals:
        ir_x, L = p.leaves[final.copy], p.blocks[final.block]
        terms = sum(len(t) for t in final.terms)
        size = sum(len(t) * ir.dim for t, ir in zip(final.terms, final.irreps, strict=True))
        steps.append(_step(value, f"weights meet {terms} trees ending in x {ir_x} -> {L}", "elementwise", axis,
                           2 * size * c, 2 * ELEMENT * size * c, size * c, backward=3 * size * c,
                           launches=terms))  # fmt: skip
        what = f"({'+'.join(map(str, final.irreps))}) x {ir_x} -> {L}"
        P = sum(ir.dim for ir in final.irreps)
        steps += _bilinear(value, what, c, L.dim, P, ir_x.dim, final.order, axis)
    if p.directs:
        size = sum(p.leaves[t.copy].dim for t in p.directs)
        steps.append(_step(value, f"{len(p.directs)} trees of degree 1, weighted", "elementwise", axis, 2 * size * c,
                           3 * ELEMENT * size * c, size * c, backward=3 * size * c,
                           launches=len(p.directs)))  # fmt: skip
    steps.append(_step(value, f"mul_ir -> [{out * c}]", "elementwise", axis, 0, 2 * ELEMENT * out * c, out * c,
                       launches=len(p.blocks) + 1))  # fmt: skip
    return tuple(steps)


@functools.cache
def mace_path_count(irreps: Irreps, degree: int, target: Irrep) -> int:
    """``K_k``: MACE's weights per channel for one output irrep and degree (its U tensor's last dimension).

    Every left-coupled chain over ordered ``degree``-tuples of the irreps of ``V`` ending in ``target``; at
    correlation 4 MACE keeps natural-parity irreps only after each coupling.

    >>> V = Irreps("0e + 1o + 2e + 3o")
    >>> [mace_path_count(V, k, Irrep("0e")) + mace_path_count(V, k, Irrep("1o")) for k in (1, 2, 3)]  # 86 in all
    [2, 10, 74]
    """
    natural = degree == 4

    def kept(ir: Irrep) -> bool:
        return not natural or ir.p == (-1) ** ir.l

    chains = {ir: 1 for _, ir in irreps}  # partial chains by their current irrep (degree 1: the irreps themselves)
    for _ in range(degree - 1):
        grown: dict[Irrep, int] = {}
        for current, count in chains.items():
            for _, ir_x in irreps:
                for nxt in current * ir_x:
                    if kept(nxt):
                        grown[nxt] = grown.get(nxt, 0) + count
        chains = grown
    return chains.get(target, 0)


def mace_steps(
    value: str, V: Irreps, nu: int, blocks: tuple[Irrep, ...], c: int, species: int | None, axis: str
) -> tuple[Step, ...]:
    """MACE's contraction of the same power (see the module docstring), per node."""
    d, steps = V.dim, []
    for L in blocks:
        for k in range(nu, 0, -1):
            K = mace_path_count(V, k, L)
            size = L.dim * d**k  # [2L+1, d^k] per channel: U_k with the node's weights (plus the degree above)
            weighting = 2 * size * K * c + 2 * (species or 1) * K * c
            steps += [
                _step(value, f"U{k} [{L.dim}x{d}^{k}x{K}] . w[z] -> [{c}, {L.dim}x{d}^{k}]", "dense", axis,
                      weighting, ELEMENT * c * (size + K), c * size),
                _step(value, f"[{c}, {L.dim}x{d}^{k}] . x -> [{c}, {L.dim}x{d}^{k - 1}]", "dense", axis,
                      2 * size * c, ELEMENT * c * (size + d + size // d), c * size // d, backward=4 * size * c),
            ]  # fmt: skip
    out = sum(ir.dim for ir in blocks)
    steps.append(_step(value, f"cat -> [{out * c}]", "elementwise", axis, 0, 2 * ELEMENT * out * c, out * c))
    return tuple(steps)
