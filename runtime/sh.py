"""Real spherical harmonics in e3nn's convention (``normalization='component'``), to any degree.

Why a recursion and not hard-coded polynomials: ``Y^{l+1}`` is, up to a constant, the ``l+1`` part of the product
``Y^l ⊗ x``, i.e. ``Y^{l+1}_k = c_l * sum_ij C_ijk Y^l_i x_j`` with ``C = wigner_3j(l, 1, l+1)``. This ties the
harmonics to our own ``wigner_3j`` (so they are equivariant under our ``wigner_D`` by construction), works for every
``l``, and each step is one broadcast product and one small matmul (on CPU, measured faster than e3nn's unrolled
polynomials for 20000 vectors, forward and backward). The constant ``c_l`` is fixed exactly by two facts of e3nn's
convention:

* component normalization, ``|Y^l(x)|^2 = 2l+1`` on the unit sphere, and
* at the pole ``x = (0, 1, 0)`` only the middle component ``mu = 0`` is nonzero and it is positive, ``+sqrt(2l+1)``.

At the pole the recursion gives ``Y^{l+1}_mid = c_l sqrt(2l+1) C[l, 1, l+1]``, hence
``c_l = sqrt(2l+3) / (sqrt(2l+1) C[l, 1, l+1])``, whose square is rational; the recursion matrices are rounded once.
"""

from __future__ import annotations

import math

import torch

from .constants import constant
from .wigner import Surd, wigner_3j_exact

Tensor = torch.Tensor


@constant
def _recursion_matrix_float64(degree: int) -> Tensor:
    """``c_l * wigner_3j(l, 1, l+1)`` as a ``[2l+3, (2l+1) * 3]`` matrix (float64, CPU), for ``l = degree``."""
    l = degree
    coupling = wigner_3j_exact(l, 1, l + 1)
    pole = coupling[(l, 1, l + 1)]
    scale_squared = (2 * l + 3) / ((2 * l + 1) * pole.square)  # c_l**2, exact
    table = torch.zeros(2 * l + 1, 3, 2 * l + 3, dtype=torch.float64)
    for (i, j, k), entry in coupling.items():
        table[i, j, k] = float(Surd(entry.sign * pole.sign, entry.square * scale_squared))
    # Rows: output component k; columns: the flattened (i, j) of Y^l_i x_j, matching the product built below.
    return table.reshape((2 * l + 1) * 3, 2 * l + 3).T.contiguous()


# Under torch.compile the tables are constants: dynamo calls this once while tracing, instead of tracing the exact
# rational arithmetic behind it (which it cannot do), and embeds the result in the graph. It returns a tuple because
# a function of this kind returning a bare tensor trips an aot_autograd assertion (torch 2.13) once called twice.
@torch.compiler.assume_constant_result
def _recursion_matrices(lmax: int) -> tuple[Tensor, ...]:
    """The recursion matrices of degrees ``1 .. lmax - 1``, element ``l - 1`` for degree ``l``."""
    return tuple(_recursion_matrix_float64(degree) for degree in range(1, lmax))


def spherical_harmonics(lmax: int, vec: Tensor, normalize: bool = True) -> Tensor:
    """Real spherical harmonics ``Y^0 ... Y^lmax`` of ``vec`` (shape ``[..., 3]``), as ``[..., (lmax+1)**2]``.

    Equal to ``e3nn.o3.spherical_harmonics(range(lmax + 1), vec, normalize, normalization='component')``: ``Y^l``
    has parity ``(-1)**l``, ``|Y^l|^2 = 2l+1`` on the unit sphere, and ``Y^1 = sqrt(3) * (x, y, z)``. With
    ``normalize=True`` the input is first scaled to unit length (zero vectors give ``Y^0 = 1`` and zeros elsewhere);
    with ``normalize=False`` each ``Y^l`` is the homogeneous degree-``l`` polynomial. Pure torch ops: differentiable
    to any order and usable under ``torch.compile(fullgraph=True)``.

    >>> spherical_harmonics(1, torch.tensor([0.0, 2.0, 0.0]))
    tensor([1.0000, 0.0000, 1.7321, 0.0000])
    >>> spherical_harmonics(2, torch.randn(10, 3)).shape
    torch.Size([10, 9])
    """
    if not isinstance(lmax, int) or lmax < 0:
        raise ValueError(f"lmax must be a non-negative integer, got {lmax!r}")
    if vec.shape[-1:] != (3,):
        raise ValueError(f"spherical_harmonics expects vectors of shape [..., 3], got {list(vec.shape)}")
    batch_shape = vec.shape[:-1]
    # Component-major layout [3, n]: on CPU, element-wise ops on long contiguous rows are many times faster than on
    # [n, 3] rows of three, and transposing in and out costs less than what it saves.
    xyz = vec.reshape(-1, 3).T.contiguous()
    if normalize:
        # torch.nn.functional.normalize's formula, x / max(|x|, 1e-12), so zero vectors give zeros. Clamping |x|^2
        # rather than |x| keeps sqrt away from 0, where its backward would turn the zero gradient into NaN.
        xyz = xyz / torch.sqrt((xyz * xyz).sum(0).clamp_min(1e-24))
    blocks = [torch.ones_like(xyz[:1])]
    if lmax >= 1:
        current = math.sqrt(3.0) * xyz
        blocks.append(current)
    for l, matrix in enumerate(_recursion_matrices(lmax), start=1):
        # Y^l ⊗ x flattened in (i, j) order, then one small matmul with the constant coupling matrix.
        product = (current[:, None, :] * xyz[None, :, :]).reshape(3 * (2 * l + 1), -1)
        current = matrix.to(dtype=vec.dtype, device=vec.device) @ product
        blocks.append(current)
    # One concatenation straight into the [n, (lmax+1)^2] layout (no separate transpose copy).
    return torch.cat([block.T for block in blocks], dim=1).view(*batch_shape, (lmax + 1) ** 2)
