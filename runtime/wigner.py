"""Exact Clebsch–Gordan coefficients, Wigner 3j tables, Wigner D matrices and rotations, in e3nn's real basis.

Conventions (the same as e3nn ≥ 0.5, see ``docs/conventions.md``):

* The real basis of degree ``l`` is indexed by ``mu = -l..l``, stored at position ``l + mu``. For ``l = 1`` the three
  components are ``(x, y, z)`` and ``y`` is the polar axis of the underlying complex spherical harmonics.
* ``wigner_3j(l1, l2, l3)`` is the real, invariant coupling tensor with Frobenius norm 1.
* ``wigner_D(l, a, b, c) = exp(a G_y) exp(b G_x) exp(c G_y)`` and ``wigner_D(1, a, b, c) == angles_to_matrix(a, b, c)``.

Everything is derived from the SU(2) Racah formula evaluated in exact rational arithmetic: each coefficient is kept as
``sign * sqrt(Fraction)`` until the very end, so the float64 tables are rounded once, not accumulated.
"""

from __future__ import annotations

import functools
import math
from fractions import Fraction
from typing import NamedTuple

import torch

from fdg.runtime.constants import constant

Tensor = torch.Tensor
HalfInteger = int | Fraction


class Surd(NamedTuple):
    """The exact real number ``sign * sqrt(square)``; ``sign`` is -1, 0 or 1 and ``square`` is non-negative.

    >>> float(Surd(-1, Fraction(1, 4)))
    -0.5
    """

    sign: int
    square: Fraction

    def __float__(self) -> float:
        return self.sign * math.sqrt(self.square)


ZERO = Surd(0, Fraction(0))


def _twice(j: HalfInteger, what: str) -> int:
    """``2 j`` as an int, for integer or half-integer ``j``; working with doubled values keeps everything integral."""
    doubled = Fraction(j) * 2
    if doubled.denominator != 1:
        raise ValueError(f"{what} = {j} is neither an integer nor a half-integer")
    return int(doubled)


def su2_clebsch_gordan(
    j1: HalfInteger, m1: HalfInteger, j2: HalfInteger, m2: HalfInteger, j3: HalfInteger, m3: HalfInteger
) -> Surd:
    """Exact SU(2) Clebsch–Gordan coefficient ``<j1 m1; j2 m2 | j3 m3>`` (Condon–Shortley phase), by Racah's formula.

    Arguments are integers or half-integers (as ``Fraction``). Couplings forbidden by the triangle rule or by
    ``m3 != m1 + m2`` give zero; inconsistent arguments (``|m| > j``, ``j - m`` not integral) raise ``ValueError``.

    >>> su2_clebsch_gordan(1, 1, 1, -1, 0, 0)
    Surd(sign=1, square=Fraction(1, 3))
    >>> su2_clebsch_gordan(Fraction(1, 2), Fraction(1, 2), Fraction(1, 2), Fraction(-1, 2), 1, 0)
    Surd(sign=1, square=Fraction(1, 2))
    """
    a1, a2, a3 = _twice(j1, "j1"), _twice(j2, "j2"), _twice(j3, "j3")
    b1, b2, b3 = _twice(m1, "m1"), _twice(m2, "m2"), _twice(m3, "m3")
    for a, b, name in ((a1, b1, "1"), (a2, b2, "2"), (a3, b3, "3")):
        if a < 0 or abs(b) > a or (a - b) % 2:
            raise ValueError(f"invalid angular momentum (j{name}, m{name}) = ({a}/2, {b}/2)")
    return _racah(a1, b1, a2, b2, a3, b3)


def _racah(a1: int, b1: int, a2: int, b2: int, a3: int, b3: int) -> Surd:
    """Racah's formula on doubled arguments ``a = 2j``, ``b = 2m`` (already checked to be consistent)."""
    if b3 != b1 + b2 or not abs(a1 - a2) <= a3 <= a1 + a2 or (a1 + a2 + a3) % 2:
        return ZERO
    # Every factorial argument below is an integer: the selection rules make all these half-sums even.
    f = math.factorial
    j1m, j2p = (a1 - b1) // 2, (a2 + b2) // 2
    t12, t13, t23 = (a1 + a2 - a3) // 2, (a1 - a2 + a3) // 2, (-a1 + a2 + a3) // 2
    numerator = (a3 + 1) * f(t12) * f(t13) * f(t23)
    numerator *= f((a1 + b1) // 2) * f(j1m) * f(j2p) * f((a2 - b2) // 2) * f((a3 + b3) // 2) * f((a3 - b3) // 2)
    # The sum runs over the k for which every factorial in its denominator has a non-negative argument. Its terms
    # are t_k = (-1)**k / (k! (t12-k)! (j1m-k)! (j2p-k)! (s1+k)! (s2+k)!), and t_{k+1} / t_k is a ratio of small
    # integers, so sum_k t_k = t_first * (1 + r_0 (1 + r_1 (1 + ...))) is evaluated by Horner's rule in integers:
    # one fraction is reduced at the very end instead of one per term (this is most of the cost of the tables).
    s1, s2 = (a3 - a2 + b1) // 2, (a3 - a1 - b2) // 2
    first, last = max(0, -s1, -s2), min(t12, j1m, j2p)
    p, q = 1, 1
    for k in range(last - 1, first - 1, -1):
        up, down = (t12 - k) * (j1m - k) * (j2p - k), (k + 1) * (s1 + k + 1) * (s2 + k + 1)
        p, q = q * down - up * p, q * down
    if p == 0:
        return ZERO
    scale = f(first) * f(t12 - first) * f(j1m - first) * f(j2p - first) * f(s1 + first) * f(s2 + first) * q
    denominator = f((a1 + a2 + a3) // 2 + 1) * scale * scale
    sign = (-1) ** first * (1 if p > 0 else -1)
    return Surd(sign, Fraction(numerator * p * p, denominator))


# --- the real basis -------------------------------------------------------------------------------------------------
#
# A real basis vector mu of degree l is a combination of the complex (|l m>) basis vectors m = +-|mu|. We write each
# coefficient as i**k * 2**(-h/2) so that the real tables below can be assembled exactly. The phases are e3nn's: the
# cosine-like vectors (mu > 0) are (|-mu> + (-1)**mu |mu>) / sqrt2, the sine-like ones (mu < 0) are
# (-i |mu> + i (-1)**mu |-mu>) / sqrt2, and the whole basis is multiplied by (-i)**l = i**(3l), the factor that makes
# every Clebsch–Gordan tensor real in this basis.


class _Component(NamedTuple):
    """Complex component ``m`` of a real basis vector, with coefficient ``i**phase * 2**(-halves/2)``."""

    m: int
    phase: int
    halves: int


def _complex_components(l: int, mu: int) -> tuple[_Component, ...]:
    nu = abs(mu)
    if nu == 0:
        return (_Component(0, 3 * l, 0),)
    if mu > 0:
        return (_Component(-nu, 3 * l, 1), _Component(nu, 3 * l + 2 * nu, 1))
    return (_Component(-nu, 3 * l + 3, 1), _Component(nu, 3 * l + 1 + 2 * nu, 1))


def change_basis_real_to_complex(
    l: int, dtype: torch.dtype = torch.complex128, device: torch.device | None = None
) -> Tensor:
    """Unitary ``Q`` (complex index ``l + m`` by real index ``l + mu``) with ``v_complex = Q @ v_real``; e3nn's choice.

    >>> Q = change_basis_real_to_complex(1)
    >>> bool(torch.allclose(Q.conj().T @ Q, torch.eye(3, dtype=Q.dtype)))
    True
    """
    units = (1, 1j, -1, -1j)
    rows = [[0j] * (2 * l + 1) for _ in range(2 * l + 1)]
    for mu in range(-l, l + 1):
        for c in _complex_components(l, mu):
            rows[l + c.m][l + mu] = units[c.phase % 4] * 2 ** (-c.halves / 2)
    return torch.tensor(rows, dtype=torch.complex128).to(dtype=dtype, device=device)


@functools.cache
def _real_components(l: int) -> dict[int, tuple[tuple[int, _Component], ...]]:
    """For each complex ``m``: the real basis vectors ``mu`` having a component on it, and that component."""
    rows: dict[int, list[tuple[int, _Component]]] = {m: [] for m in range(-l, l + 1)}
    for mu in range(-l, l + 1):
        for c in _complex_components(l, mu):
            rows[c.m].append((mu, c))
    return {m: tuple(row) for m, row in rows.items()}


@functools.cache
def wigner_3j_exact(l1: int, l2: int, l3: int) -> dict[tuple[int, int, int], Surd]:
    """The nonzero entries of ``wigner_3j(l1, l2, l3)`` as exact surds, keyed by ``(i, j, k)`` array positions.

    ``C_real[mu1, mu2, mu3] = sum Q1[m1, mu1] Q2[m2, mu2] conj(Q3[m3, mu3]) <l1 m1; l2 m2 | l3 m3>``, then scaled to
    Frobenius norm 1. Only the two complex terms related by ``m -> -m`` ever meet in one real entry, and they share
    their magnitude, so every entry is again a single real surd.

    >>> wigner_3j_exact(1, 1, 0)[(0, 0, 0)]
    Surd(sign=1, square=Fraction(1, 3))
    """
    _check_triangle(l1, l2, l3)
    # Per real entry: the Gaussian integer [re, im] that multiplies the common magnitude of its terms, and that
    # magnitude, kept as (CG square, number of 1/sqrt2 factors). Whether an entry vanishes is decided in integers.
    phases: dict[tuple[int, int, int], list[int]] = {}
    magnitudes: dict[tuple[int, int, int], tuple[Fraction, int]] = {}
    rows1, rows2, rows3 = _real_components(l1), _real_components(l2), _real_components(l3)
    for m1 in range(-l1, l1 + 1):
        for m2 in range(max(-l2, -l3 - m1), min(l2, l3 - m1) + 1):
            cg = _racah(2 * l1, 2 * m1, 2 * l2, 2 * m2, 2 * l3, 2 * (m1 + m2))
            if not cg.sign:
                continue
            for mu1, c1 in rows1[m1]:
                for mu2, c2 in rows2[m2]:
                    for mu3, c3 in rows3[m1 + m2]:
                        key = (l1 + mu1, l2 + mu2, l3 + mu3)
                        magnitude = (cg.square, c1.halves + c2.halves + c3.halves)
                        if magnitudes.setdefault(key, magnitude) != magnitude:
                            raise ArithmeticError(f"internal error: terms of entry {key} of ({l1}, {l2}, {l3}) differ")
                        phase = (c1.phase + c2.phase - c3.phase) % 4  # conj(Q3) negates its phase
                        phases.setdefault(key, [0, 0])[phase % 2] += cg.sign * (1 if phase < 2 else -1)
    # The basis change is unitary and the rows of the complex CG table are orthonormal, so before scaling the table's
    # squared Frobenius norm is exactly 2 l3 + 1.
    norm_squared = 2 * l3 + 1
    entries: dict[tuple[int, int, int], Surd] = {}
    for key, (re, im) in sorted(phases.items()):
        if im:
            raise ArithmeticError(f"internal error: entry {key} of the real ({l1}, {l2}, {l3}) coupling is not real")
        if re:
            square, halves = magnitudes[key]
            scaled = Fraction(square.numerator * re * re, square.denominator * (norm_squared << halves))
            entries[key] = Surd(1 if re > 0 else -1, scaled)
    return entries


def _check_triangle(l1: int, l2: int, l3: int) -> None:
    for l in (l1, l2, l3):
        if not isinstance(l, int) or isinstance(l, bool) or l < 0:
            raise ValueError(f"degrees must be non-negative integers, got ({l1}, {l2}, {l3})")
    if not abs(l1 - l2) <= l3 <= l1 + l2:
        raise ValueError(f"({l1}, {l2}, {l3}) violates the triangle rule |l1 - l2| <= l3 <= l1 + l2")


@constant
def _wigner_3j_float64(l1: int, l2: int, l3: int) -> Tensor:
    entries = wigner_3j_exact(l1, l2, l3)
    table = torch.zeros(2 * l1 + 1, 2 * l2 + 1, 2 * l3 + 1, dtype=torch.float64)
    index = torch.tensor(list(entries), dtype=torch.int64).reshape(-1, 3).T
    table[tuple(index)] = torch.tensor([float(v) for v in entries.values()], dtype=torch.float64)
    return table


def wigner_3j(
    l1: int, l2: int, l3: int, dtype: torch.dtype | None = None, device: torch.device | str | None = None
) -> Tensor:
    """Real coupling tensor ``C`` of shape ``(2l1+1, 2l2+1, 2l3+1)``, equal to ``e3nn.o3.wigner_3j``.

    ``C`` has Frobenius norm 1 and is invariant: ``einsum('ia,jb,kc,abc->ijk', D1, D2, D3, C) == C`` for the Wigner D
    matrices of any rotation. The float64 table is computed once per triple; each call returns a fresh copy (default
    dtype: ``torch.get_default_dtype()``), so callers may modify it.

    >>> C = wigner_3j(1, 1, 0, dtype=torch.float64)  # the dot product of two vectors, normalized
    >>> bool(torch.allclose(C.squeeze(-1), torch.eye(3, dtype=torch.float64) / 3**0.5))
    True
    """
    _check_triangle(l1, l2, l3)
    table = _wigner_3j_float64(l1, l2, l3)
    return table.to(dtype=dtype or torch.get_default_dtype(), device=device, copy=True)


# --- generators and Wigner D ----------------------------------------------------------------------------------------


@constant
def _so3_generators_float64(l: int) -> Tensor:
    m = torch.arange(-l, l + 1, dtype=torch.float64)
    # <m+1| J+ |m> = sqrt(l(l+1) - m(m+1)); stored below the diagonal in the complex basis (m = -l..l).
    j_plus = torch.diag(torch.sqrt(l * (l + 1) - m[:-1] * (m[:-1] + 1)), -1).to(torch.complex128)
    j_minus = j_plus.T
    j_x, j_y, j_z = (j_plus + j_minus) / 2, (j_plus - j_minus) / 2j, torch.diag(m).to(torch.complex128)
    # With e3nn's change of basis these three anti-hermitian matrices become the real generators of rotations about the
    # x, y (polar) and z axes; the sign pattern is what makes wigner_D(1, ...) the ordinary 3x3 rotation matrix.
    q = change_basis_real_to_complex(l)
    generators = torch.stack([-1j * j_y, 1j * j_z, 1j * j_x])
    real = q.conj().T @ generators @ q
    if real.imag.abs().max() > 1e-12:
        raise ArithmeticError("internal error: generators are not real in the real basis")
    return real.real.contiguous()


def so3_generators(l: int, dtype: torch.dtype | None = None, device: torch.device | str | None = None) -> Tensor:
    """Real antisymmetric generators ``G`` of shape ``(3, 2l+1, 2l+1)``: ``G[a]`` generates rotations about axis a.

    ``torch.linalg.matrix_exp(t * G[a])`` is the Wigner D matrix of the rotation by angle ``t`` about x, y or z.

    >>> (so3_generators(1).round() + 0.0)[2].tolist()  # for l = 1, the ordinary generator of rotations about z
    [[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 0.0]]
    """
    if not isinstance(l, int) or l < 0:
        raise ValueError(f"l must be a non-negative integer, got {l!r}")
    return _so3_generators_float64(l).to(dtype=dtype or torch.get_default_dtype(), device=device, copy=True)


@constant
def _polar_rotation_pattern(l: int) -> tuple[Tensor, Tensor, Tensor]:
    """Frequencies and sine pattern of rotations about y, and ``K = D(rotation by pi/2 about z)``, all float64."""
    generators = _so3_generators_float64(l)
    # In the real basis the y generator only couples mu with -mu: it is anti-diagonal, with entries -mu. A rotation
    # by a about y is therefore a set of 2x2 rotations by mu * a, which we write in closed form instead of exp().
    anti_diagonal = torch.flip(generators[1], [-1]).diagonal()
    frequencies = torch.arange(-l, l + 1, dtype=torch.float64).abs()
    quarter_turn_z = torch.linalg.matrix_exp(generators[2] * (math.pi / 2))
    return frequencies, anti_diagonal, quarter_turn_z


def _rotation_about_y(l: int, angle: Tensor) -> Tensor:
    frequencies, anti_diagonal, _ = _polar_rotation_pattern(l)
    frequencies = frequencies.to(dtype=angle.dtype, device=angle.device)
    anti_diagonal = anti_diagonal.to(dtype=angle.dtype, device=angle.device)
    a = angle[..., None]
    cos = torch.diag_embed(torch.cos(frequencies * a))
    sin = torch.flip(torch.diag_embed(torch.sin(anti_diagonal * a)), [-1])
    return cos + sin


def _as_float_tensors(*values: Tensor | float) -> tuple[Tensor, ...]:
    """Broadcast float tensors; Python numbers take the tensors' dtype and device (default dtype if none)."""
    floats = [v.dtype for v in values if isinstance(v, Tensor) and v.is_floating_point()]
    dtype = functools.reduce(torch.promote_types, floats) if floats else torch.get_default_dtype()
    device = next((v.device for v in values if isinstance(v, Tensor)), None)
    return tuple(torch.broadcast_tensors(*(torch.as_tensor(v, dtype=dtype, device=device) for v in values)))


def wigner_D(l: int, alpha: Tensor | float, beta: Tensor | float, gamma: Tensor | float) -> Tensor:
    """Wigner D matrix of the rotation ``R(alpha, beta, gamma) = Ry(alpha) Rx(beta) Ry(gamma)`` (shape ``[..., d, d]``).

    Equal to ``e3nn.o3.wigner_D``; angles broadcast against each other. Rotations about y are closed-form cos/sin
    blocks and the rotation about x is conjugated onto y by a fixed quarter turn about z, so no matrix exponential is
    evaluated per call (cheap, exact to rounding, and twice differentiable).

    >>> bool(torch.allclose(wigner_D(1, 0.1, 0.2, 0.3), angles_to_matrix(0.1, 0.2, 0.3)))
    True
    """
    if not isinstance(l, int) or l < 0:
        raise ValueError(f"l must be a non-negative integer, got {l!r}")
    alpha, beta, gamma = _as_float_tensors(alpha, beta, gamma)
    quarter = _polar_rotation_pattern(l)[2].to(dtype=alpha.dtype, device=alpha.device)
    # Rx(b) = Rz(pi/2)^-1 Ry(b) Rz(pi/2), because Rz(pi/2) maps the x axis onto the y axis.
    about_x = quarter.T @ _rotation_about_y(l, beta) @ quarter
    return _rotation_about_y(l, alpha) @ about_x @ _rotation_about_y(l, gamma)


# --- rotations ------------------------------------------------------------------------------------------------------


def _axis_rotation(angle: Tensor, axis: int) -> Tensor:
    """3x3 rotation matrices by ``angle`` (right-handed) about coordinate ``axis``."""
    c, s, o, z = torch.cos(angle), torch.sin(angle), torch.ones_like(angle), torch.zeros_like(angle)
    # Only x (0) and y (1) are needed for e3nn's Euler angles.
    rows = [[o, z, z], [z, c, -s], [z, s, c]] if axis == 0 else [[c, z, s], [z, o, z], [-s, z, c]]
    return torch.stack([torch.stack(row, dim=-1) for row in rows], dim=-2)


def angles_to_matrix(alpha: Tensor | float, beta: Tensor | float, gamma: Tensor | float) -> Tensor:
    """Rotation matrix ``Ry(alpha) @ Rx(beta) @ Ry(gamma)`` of shape ``[..., 3, 3]`` (e3nn's Euler convention).

    >>> (angles_to_matrix(0.0, 0.0, math.pi / 2).round() + 0.0).tolist()  # quarter turn about y: z -> x
    [[0.0, 0.0, 1.0], [0.0, 1.0, 0.0], [-1.0, 0.0, 0.0]]
    """
    alpha, beta, gamma = _as_float_tensors(alpha, beta, gamma)
    return _axis_rotation(alpha, 1) @ _axis_rotation(beta, 0) @ _axis_rotation(gamma, 1)


def matrix_to_angles(R: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Euler angles ``(alpha, beta, gamma)`` of proper rotation matrices ``R`` (``[..., 3, 3]``, det +1).

    ``beta`` is in ``[0, pi]``; ``alpha`` and ``gamma`` in ``(-pi, pi]``.

    >>> a, b, c = matrix_to_angles(angles_to_matrix(0.1, 0.2, 0.3))
    >>> [round(float(t), 6) for t in (a, b, c)]
    [0.1, 0.2, 0.3]
    """
    # The image of the polar axis fixes alpha and beta; what is left once they are undone is a rotation about y.
    y_image = torch.nn.functional.normalize(R[..., :, 1], dim=-1).clamp(-1, 1)
    beta = torch.acos(y_image[..., 1])
    alpha = torch.atan2(y_image[..., 0], y_image[..., 2])
    rest = angles_to_matrix(alpha, beta, torch.zeros_like(alpha)).transpose(-1, -2) @ R
    gamma = torch.atan2(rest[..., 0, 2], rest[..., 0, 0])
    return alpha, beta, gamma


def rand_angles(
    *shape: int,
    dtype: torch.dtype | None = None,
    device: torch.device | str | None = None,
    generator: torch.Generator | None = None,
) -> tuple[Tensor, Tensor, Tensor]:
    """Euler angles of rotations drawn uniformly (Haar measure); three tensors of shape ``shape``.

    >>> [tuple(t.shape) for t in rand_angles(4)]
    [(4,), (4,), (4,)]
    """
    u = torch.rand(3, *shape, dtype=dtype, device=device, generator=generator)
    # Uniform on SO(3): alpha and gamma uniform, cos(beta) uniform on [-1, 1].
    return 2 * math.pi * u[0], torch.acos(2 * u[1] - 1), 2 * math.pi * u[2]


def rand_matrix(
    *shape: int,
    dtype: torch.dtype | None = None,
    device: torch.device | str | None = None,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Uniformly random rotation matrices of shape ``[*shape, 3, 3]``.

    >>> R = rand_matrix(2, dtype=torch.float64)
    >>> bool(torch.allclose(R @ R.transpose(-1, -2), torch.eye(3, dtype=torch.float64)))
    True
    """
    return angles_to_matrix(*rand_angles(*shape, dtype=dtype, device=device, generator=generator))
