"""How often an irrep occurs in a symmetric power of an O(3) representation, by characters alone.

This is the dimension of the space of equivariant homogeneous polynomial maps of degree ``n`` from ``V`` to ``ir``,
i.e. the number of weights ``power(a, nu)`` needs per channel, per output irrep and per order. It is computed here
without building any basis, so that the basis construction (``power_basis.py``) can be checked against it and the
compiler can count weights cheaply.

The method. ``O(3) = SO(3) x {1, inversion}``, and a class function of ``SO(3)`` depends only on the rotation angle
``theta``. Restricted to rotations about one axis, a character is a Laurent polynomial in ``q = exp(i theta)``: the
irrep of degree ``l`` has ``chi_l(q) = q^-l + ... + q^l``. For a representation ``V`` and a group element ``g``:

* the power sums are ``p_k(g) = chi_V(g^k)``: ``q -> q^k``, and the inversion, raised to the power ``k``, contributes
  the parity ``p^k`` of each irrep;
* the complete symmetric functions ``h_n(g) = chi_{Sym^n V}(g)`` follow from Newton's identity
  ``n h_n = sum_{k=1..n} p_k h_{n-k}`` (the cycle index of the symmetric group);
* an ``SO(3)`` character ``f(q) = sum_l m_l chi_l(q)`` has ``m_l = [q^l] f - [q^(l+1)] f`` (each ``chi_l`` adds one to
  every coefficient ``-l..l``);
* with ``f+`` the character on rotations and ``f-`` on rotations times the inversion, the irrep ``(L, P)`` occurs
  ``(m_L(f+) + P m_L(f-)) / 2`` times (orthogonality of the characters of ``{1, inversion}``).

All arithmetic is exact (integers and ``Fraction``).
"""

from __future__ import annotations

import functools
import math
from collections import defaultdict
from fractions import Fraction

from .irreps import Irrep, IrrepLike, Irreps, IrrepsLike

# A Laurent polynomial in q, as {exponent: coefficient}.
Laurent = dict[int, Fraction]


def _multiply(a: Laurent, b: Laurent) -> Laurent:
    out: defaultdict[int, Fraction] = defaultdict(Fraction)
    for i, x in a.items():
        for j, y in b.items():
            out[i + j] += x * y
    return dict(out)


def _power_sum(irreps: Irreps, k: int, inversion: bool) -> Laurent:
    """``chi_V(g^k)`` where ``g`` is a rotation by ``theta`` (times the inversion when ``inversion``)."""
    out: defaultdict[int, Fraction] = defaultdict(Fraction)
    for mul, ir in irreps:
        sign = ir.p**k if inversion else 1
        for m in range(-ir.l, ir.l + 1):
            out[k * m] += mul * sign
    return dict(out)


def _symmetric_power_character(irreps: Irreps, n: int, inversion: bool) -> Laurent:
    """``chi_{Sym^n V}`` on the torus, by Newton's identity ``n h_n = sum_k p_k h_{n-k}``."""
    h: list[Laurent] = [{0: Fraction(1)}]
    sums = [_power_sum(irreps, k, inversion) for k in range(1, n + 1)]
    for order in range(1, n + 1):
        total: defaultdict[int, Fraction] = defaultdict(Fraction)
        for k in range(1, order + 1):
            for e, c in _multiply(sums[k - 1], h[order - k]).items():
                total[e] += c
        h.append({e: c / order for e, c in total.items() if c})
    return h[n]


def _so3_multiplicity(character: Laurent, l: int) -> Fraction:
    return character.get(l, Fraction(0)) - character.get(l + 1, Fraction(0))


@functools.cache
def _decomposition(irreps: Irreps, n: int) -> tuple[tuple[Irrep, int], ...]:
    plus = _symmetric_power_character(irreps, n, inversion=False)
    minus = _symmetric_power_character(irreps, n, inversion=True)
    lmax = n * max((ir.l for mul, ir in irreps if mul), default=0)
    out = []
    for l in range(lmax + 1):
        for p in (-1, 1):  # e3nn's order of irreps: 0o < 0e < 1o < 1e
            count = (_so3_multiplicity(plus, l) + p * _so3_multiplicity(minus, l)) / 2
            if count.denominator != 1 or count < 0:
                raise ArithmeticError(f"non-integral multiplicity {count} of {Irrep(l, p)}: a bug in the characters")
            if count:
                out.append((Irrep(l, p), int(count)))
    return tuple(out)


def symmetric_power_decomposition(irreps: IrrepsLike, n: int) -> tuple[tuple[Irrep, int], ...]:
    """Every irrep of ``Sym^n(V)`` with its multiplicity, in e3nn's irrep order (``V = irreps``, ``n >= 0``).

    >>> [(str(ir), m) for ir, m in symmetric_power_decomposition("1o", 2)]  # x x^T: trace and traceless part
    [('0e', 1), ('2e', 1)]
    """
    if not isinstance(n, int) or n < 0:
        raise ValueError(f"the degree of a symmetric power must be a non-negative integer, got {n!r}")
    return _decomposition(Irreps(irreps), n)


def symmetric_power_multiplicity(irreps: IrrepsLike, n: int, ir_out: IrrepLike) -> int:
    """Multiplicity of ``ir_out`` in ``Sym^n(V)``: the number of independent equivariant degree-``n`` maps V -> ir_out.

    >>> symmetric_power_multiplicity("0e + 1o + 2e + 3o", 3, "0e")
    8
    >>> symmetric_power_multiplicity("1o", 2, "1e")  # the cross product of a vector with itself vanishes
    0
    """
    target = Irrep(ir_out)
    return dict(symmetric_power_decomposition(irreps, n)).get(target, 0)


def monomial_count(dim: int, degree: int) -> int:
    """Number of monomials of degree ``degree`` in ``dim`` variables: the dimension of ``Sym^degree`` of ``dim``.

    >>> monomial_count(16, 3)
    816
    """
    return math.comb(dim + degree - 1, degree)
