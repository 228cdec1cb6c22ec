"""Irreducible representations of O(3) and their direct sums, with e3nn's string syntax and semantics.

``Irrep(l, p)`` is degree ``l`` with parity ``p``; ``Irreps`` is an immutable tuple of ``MulIr(mul, ir)``, laid out
``mul_ir`` (all copies of the first irrep, then of the second...). Both compare equal to e3nn's objects with the same
content, since all of them are plain tuples underneath.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, NamedTuple, SupportsIndex, Union, overload

if TYPE_CHECKING:  # torch loads only where a representation matrix is built: the compiler's checks never need it
    import torch
    from torch import Tensor
IrrepLike = Union["Irrep", str, tuple[int, int]]
IrrepsLike = Union["Irreps", str, "Irrep", "MulIr", Iterable[Any], None]

_PARITY_LETTERS = {1: "e", -1: "o"}
_TERM = re.compile(r"(?:([0-9]+)\s*x\s*)?([0-9]+)([eoy])")  # ASCII digits only, unlike int()


class _IrrepFields(NamedTuple):
    l: int
    p: int


class Irrep(_IrrepFields):
    """Irreducible representation of O(3): degree ``l >= 0`` and parity ``p`` (+1 even, -1 odd).

    Ordered like e3nn's, as the tuple ``(l, p)``, so ``1o < 1e``. ``"1y"`` means parity ``(-1)**l``.

    >>> Irrep("1o"), Irrep(2, 1), Irrep("3y")
    (Irrep('1o'), Irrep('2e'), Irrep('3o'))
    >>> Irrep("1o").dim, [str(ir) for ir in Irrep("1o") * Irrep("1o")]
    (3, ['0e', '1e', '2e'])
    """

    __slots__ = ()

    def __new__(cls, l: IrrepLike | int, p: int | None = None) -> Irrep:
        if p is None:
            if isinstance(l, Irrep):
                return l
            if isinstance(l, str):
                return _parse_irrep(l)
            # Unpack through iteration: e3nn's Irrep is a tuple whose len() raises.
            parts = tuple(iter(l)) if isinstance(l, tuple) else ()
            if len(parts) != 2:
                raise ValueError(f"cannot interpret {l!r} as an irrep; expected e.g. Irrep(1, -1) or Irrep('1o')")
            l, p = parts
        if not isinstance(l, int) or isinstance(l, bool) or l < 0:
            raise ValueError(f"the degree l of an irrep must be a non-negative integer, got {l!r}")
        if p not in (1, -1) or isinstance(p, bool):
            raise ValueError(f"the parity p of an irrep must be 1 or -1, got {p!r}")
        return super().__new__(cls, l, p)

    def __str__(self) -> str:
        return f"{self.l}{_PARITY_LETTERS[self.p]}"

    def __repr__(self) -> str:
        return f"Irrep('{self}')"

    @property
    def dim(self) -> int:
        """Dimension ``2l + 1``."""
        return 2 * self.l + 1

    def is_scalar(self) -> bool:
        """True for ``0e``."""
        return self.l == 0 and self.p == 1

    def __mul__(self, other: IrrepLike) -> tuple[Irrep, ...]:  # type: ignore[override]
        """Irreps in the product ``self ⊗ other``, by increasing ``l``."""
        other = Irrep(other)
        return tuple(Irrep(l, self.p * other.p) for l in range(abs(self.l - other.l), self.l + other.l + 1))

    def __rmul__(self, mul: SupportsIndex) -> Irreps:  # type: ignore[override]
        """``3 * Irrep('1o')`` is ``Irreps('3x1o')``."""
        if not isinstance(mul, int):
            return NotImplemented
        return Irreps([(mul, self)])

    def __add__(self, other: IrrepsLike) -> Irreps:  # type: ignore[override]
        return Irreps(self) + Irreps(other)

    def D_from_angles(
        self, alpha: Tensor | float, beta: Tensor | float, gamma: Tensor | float, k: Tensor | int = 0
    ) -> Tensor:
        """``p**k * wigner_D(l, alpha, beta, gamma)``: the rotation, followed by ``k`` inversions."""
        import torch

        from .wigner import wigner_D

        D = wigner_D(self.l, alpha, beta, gamma)
        if self.p == 1:
            return D
        if isinstance(k, int):
            return D if k % 2 == 0 else -D
        sign = 1 - 2 * torch.remainder(k, 2).to(D.dtype)
        return D * sign[..., None, None]

    def D_from_matrix(self, R: Tensor) -> Tensor:
        """Representation matrix of the orthogonal matrices ``R`` (rotations, or rotations times the inversion)."""
        return self.D_from_angles(*_angles_and_inversions(R))


class MulIr(NamedTuple):
    """``mul`` copies of the irrep ``ir``.

    >>> MulIr(4, Irrep("1o")).dim, str(MulIr(4, Irrep("1o")))
    (12, '4x1o')
    """

    mul: int
    ir: Irrep

    @property
    def dim(self) -> int:
        return self.mul * self.ir.dim

    def __str__(self) -> str:
        return f"{self.mul}x{self.ir}"


class SortResult(NamedTuple):
    """Result of ``Irreps.sort``: ``irreps[i] == original[inv[i]]`` and ``p[inv[i]] == i``."""

    irreps: Irreps
    p: tuple[int, ...]
    inv: tuple[int, ...]


def _parse_irrep(text: str) -> Irrep:
    match = re.fullmatch(r"\s*([0-9]+)([eoy])\s*", text)
    if match is None:
        raise ValueError(f"invalid irrep {text!r}: expected a degree and a parity letter, e.g. '0e', '1o' or '2y'")
    return _irrep_from_match(match.group(1), match.group(2))


def _irrep_from_match(degree: str, letter: str) -> Irrep:
    l = int(degree)
    return Irrep(l, {"e": 1, "o": -1, "y": (-1) ** l}[letter])


def _parse_irreps(text: str) -> list[MulIr]:
    if not text.strip():
        return []
    out = []
    for term in text.split("+"):
        match = _TERM.fullmatch(term.strip())
        if match is None:
            if not term.strip():
                raise ValueError(f"invalid irreps {text!r}: empty term (a '+' with nothing on one side)")
            raise ValueError(
                f"invalid irreps {text!r}: cannot read {term.strip()!r}; expected MULxIRREP such as '16x0e', or an "
                "irrep such as '1o' (a degree followed by the parity e, o or y)"
            )
        mul = int(match.group(1)) if match.group(1) is not None else 1
        out.append(MulIr(mul, _irrep_from_match(match.group(2), match.group(3))))
    return out


def _mul_ir(item: Any) -> MulIr:
    """One element of a list given to ``Irreps``: ``MulIr``, ``(mul, ir)``, ``Irrep`` / ``(l, p)``, or ``'2x1o'``."""
    if isinstance(item, str):
        terms = _parse_irreps(item)
        if len(terms) == 1:
            return terms[0]
    elif isinstance(item, Irrep):
        return MulIr(1, item)
    elif isinstance(item, (tuple, list)) and len(parts := tuple(iter(item))) == 2:
        mul, ir = parts
        if isinstance(ir, (Irrep, str, tuple)):
            if not isinstance(mul, int) or isinstance(mul, bool) or mul < 0:
                raise ValueError(f"multiplicity must be a non-negative integer, got {mul!r} in {item!r}")
            return MulIr(mul, Irrep(ir))
        return MulIr(1, Irrep((mul, ir)))  # an (l, p) pair
    raise ValueError(f"cannot interpret {item!r} as a (multiplicity, irrep) pair")


def _angles_and_inversions(R: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Split orthogonal matrices into Euler angles of ``det(R) R`` and the number of inversions (0 or 1)."""
    import torch

    from .wigner import matrix_to_angles

    sign = torch.linalg.det(R).sign()
    alpha, beta, gamma = matrix_to_angles(R * sign[..., None, None])
    return alpha, beta, gamma, ((1 - sign) / 2).round().to(torch.int64)


class Irreps(tuple[MulIr, ...]):
    """Direct sum of irreps, an immutable tuple of ``MulIr`` in e3nn's ``mul_ir`` layout.

    Built from a string in e3nn syntax, an ``Irrep``, or a list of ``(mul, ir)`` pairs. Equality is tuple equality,
    as in e3nn: nothing is merged, so ``Irreps('2x0e') != Irreps('0e + 0e')``.

    >>> irreps = Irreps("16x0e + 8x1o")
    >>> str(irreps), irreps.dim, irreps.num_irreps, irreps.lmax
    ('16x0e+8x1o', 40, 24, 1)
    >>> irreps.slices()
    [slice(0, 16, None), slice(16, 40, None)]
    >>> Irreps([(2, (1, -1)), (1, "0e")]) == Irreps("2x1o+0e")
    True
    """

    __slots__ = ()

    def __new__(cls, irreps: IrrepsLike = None) -> Irreps:
        if isinstance(irreps, Irreps):
            return irreps
        if irreps is None:
            items: list[MulIr] = []
        elif isinstance(irreps, str):
            items = _parse_irreps(irreps)
        elif isinstance(irreps, Irrep):
            items = [MulIr(1, irreps)]
        elif isinstance(irreps, MulIr):
            items = [irreps]
        else:
            try:
                items = [_mul_ir(item) for item in irreps]
            except TypeError:  # not iterable
                raise ValueError(f"cannot interpret {irreps!r} as irreps; expected e.g. '16x0e + 8x1o'") from None
        return super().__new__(cls, items)

    @staticmethod
    def spherical_harmonics(lmax: int, p: int = -1) -> Irreps:
        """``1x0e + 1x1o + 1x2e + ...`` up to ``lmax`` (with ``p = 1``: all even).

        >>> str(Irreps.spherical_harmonics(3))
        '1x0e+1x1o+1x2e+1x3o'
        """
        return Irreps([(1, (l, p**l)) for l in range(lmax + 1)])

    def __str__(self) -> str:
        return "+".join(str(mul_ir) for mul_ir in self)

    def __repr__(self) -> str:
        return f"Irreps('{self}')"

    @property
    def dim(self) -> int:
        return sum(mul_ir.dim for mul_ir in self)

    @property
    def num_irreps(self) -> int:
        """Sum of the multiplicities."""
        return sum(mul_ir.mul for mul_ir in self)

    @property
    def ls(self) -> list[int]:
        """Degree of every copy, in layout order."""
        return [ir.l for mul, ir in self for _ in range(mul)]

    @property
    def lmax(self) -> int:
        """Largest degree among the copies present (like e3nn, irreps with multiplicity 0 do not count)."""
        if not self.num_irreps:
            raise ValueError(f"Irreps('{self}') has no irreps, hence no lmax")
        return max(ir.l for mul, ir in self if mul)

    def slices(self) -> list[slice]:
        """Position of each ``MulIr`` block in a flat feature vector of length ``dim``."""
        out, start = [], 0
        for mul_ir in self:
            out.append(slice(start, start + mul_ir.dim))
            start += mul_ir.dim
        return out

    @overload
    def __getitem__(self, index: SupportsIndex) -> MulIr: ...
    @overload
    def __getitem__(self, index: slice) -> Irreps: ...
    def __getitem__(self, index: SupportsIndex | slice) -> MulIr | Irreps:
        if isinstance(index, slice):
            return Irreps(tuple.__getitem__(self, index))
        return tuple.__getitem__(self, index)

    def __contains__(self, ir: object) -> bool:
        """Whether an irrep occurs (with any multiplicity): ``'1o' in Irreps('0x1o')`` is True, as in e3nn."""
        try:
            target = Irrep(ir)  # type: ignore[arg-type]
        except ValueError:
            return False
        return any(mul_ir.ir == target for mul_ir in self)

    def count(self, ir: IrrepLike) -> int:
        """Total multiplicity of ``ir``."""
        target = Irrep(ir)
        return sum(mul for mul, other in self if other == target)

    def __add__(self, other: IrrepsLike) -> Irreps:
        """Concatenation, without merging: ``Irreps('0e') + '0e'`` is ``1x0e+1x0e``."""
        return Irreps(tuple.__add__(self, Irreps(other)))

    def __radd__(self, other: IrrepsLike) -> Irreps:
        return Irreps(other) + self

    def __mul__(self, times: SupportsIndex) -> Irreps:
        """Repetition, as for tuples: ``Irreps('0e + 1o') * 2`` is ``0e+1o+0e+1o``."""
        return Irreps(tuple.__mul__(self, times))

    def __rmul__(self, times: SupportsIndex) -> Irreps:
        return self * times

    def channel(self) -> Irreps:
        """The irreps of one channel: every block with multiplicity one (``4x0e+4x1o`` -> ``1x0e+1x1o``)."""
        return Irreps([(1, ir) for _, ir in self])

    def simplify(self) -> Irreps:
        """Merge neighbouring copies of the same irrep and drop zero multiplicities; does not sort."""
        out: list[MulIr] = []
        for mul, ir in self:
            if out and out[-1].ir == ir:
                out[-1] = MulIr(out[-1].mul + mul, ir)
            elif mul > 0:
                out.append(MulIr(mul, ir))
        return Irreps(out)

    def remove_zero_multiplicities(self) -> Irreps:
        return Irreps([mul_ir for mul_ir in self if mul_ir.mul > 0])

    def sort(self) -> SortResult:
        """Stable sort by irrep, like e3nn: returns ``(irreps, p, inv)`` with ``sorted[i] = self[inv[i]]``.

        >>> Irreps("2o + 1e + 0e + 1e").sort().p
        (3, 1, 0, 2)
        """
        inv = tuple(sorted(range(len(self)), key=lambda i: (self[i].ir, i)))
        p = [0] * len(inv)
        for new, old in enumerate(inv):
            p[old] = new
        return SortResult(Irreps([self[i] for i in inv]), tuple(p), inv)

    def regroup(self) -> Irreps:
        """``sort().irreps.simplify()``: one block per distinct irrep, in increasing order."""
        return self.sort().irreps.simplify()

    def D_from_angles(
        self, alpha: Tensor | float, beta: Tensor | float, gamma: Tensor | float, k: Tensor | int = 0
    ) -> Tensor:
        """Block-diagonal representation matrix ``[..., dim, dim]`` of ``R(alpha, beta, gamma)`` times ``k`` inversions.

        >>> Irreps("2x0e + 1o").D_from_angles(0.0, 0.0, 0.0, 1).diagonal().tolist()
        [1.0, 1.0, -1.0, -1.0, -1.0]
        """
        blocks: dict[Irrep, Tensor] = {}
        for _, ir in self:
            if ir not in blocks:
                blocks[ir] = ir.D_from_angles(alpha, beta, gamma, k)
        if not blocks:
            import torch

            shape = torch.broadcast_shapes(*(torch.as_tensor(v).shape for v in (alpha, beta, gamma, k)))
            return torch.zeros(*shape, 0, 0)
        some = next(iter(blocks.values()))
        out = some.new_zeros(*some.shape[:-2], self.dim, self.dim)
        start = 0
        for mul, ir in self:
            for _ in range(mul):
                out[..., start : start + ir.dim, start : start + ir.dim] = blocks[ir]
                start += ir.dim
        return out

    def D_from_matrix(self, R: Tensor) -> Tensor:
        """Representation matrix of orthogonal ``R`` (``[..., 3, 3]``); ``det R = -1`` includes the inversion, which
        multiplies the odd irreps by -1.

        >>> import torch
        >>> Irreps("0e + 0o + 1o").D_from_matrix(-torch.eye(3)).diagonal().tolist()
        [1.0, -1.0, -1.0, -1.0, -1.0]
        """
        return self.D_from_angles(*_angles_and_inversions(R))

    def randn(
        self,
        *shape: int,
        dtype: torch.dtype | None = None,
        device: torch.device | str | None = None,
        requires_grad: bool = False,
        generator: torch.Generator | None = None,
    ) -> Tensor:
        """Standard normal features: ``-1`` in ``shape`` stands for ``dim`` (appended last if absent).

        >>> Irreps("2x1o").randn(5, -1).shape
        torch.Size([5, 6])
        """
        import torch

        sizes = [self.dim if s == -1 else s for s in shape] if -1 in shape else [*shape, self.dim]
        x = torch.randn(*sizes, dtype=dtype, device=device, generator=generator)
        return x.requires_grad_(requires_grad)
