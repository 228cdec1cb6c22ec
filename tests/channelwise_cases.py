"""Random operands of the native channel-wise kernel (``fdg.runtime.channelwise_op``) and its plain einsum reference,
for the kernel's tests (4-linear and paired)."""

from __future__ import annotations

import torch

from fdg.runtime import Irreps
from fdg.runtime.channelwise_op import Pair, table
from fdg.runtime.grouped import coupling_matrix


def case(muls: tuple[int, ...], sh: int, shared: bool, dtype: torch.dtype = torch.float64, n: int = 5):
    """A uvu coupling of ``a = sum_l muls[l] x l`` with ``sh(sh)``, every path, and random operands."""
    a = Irreps([(mul, (l, (-1) ** l)) for l, mul in enumerate(muls)])
    b = Irreps.spherical_harmonics(sh)
    offsets = [0]
    for _, ir in b:
        offsets.append(offsets[-1] + ir.dim)
    paths = []  # (i1, i2, output irrep)
    for i1, (_, ir1) in enumerate(a):
        for i2, (_, ir2) in enumerate(b):
            for ir3 in ir1 * ir2:
                paths.append((i1, i2, ir3))
    outputs = sorted({(i1, ir3) for i1, _, ir3 in paths}, key=lambda o: (o[1].l, o[1].p, o[0]))
    y_irreps = Irreps([(a[i1].mul, ir3) for i1, ir3 in outputs])
    weight_offsets, total = [], 0
    for i1, _, _ in paths:
        weight_offsets.append(total)
        total += a[i1].mul
    recipe, blocks, members = [], [], {}
    for p, (i1, _, ir3) in enumerate(paths):
        members.setdefault((outputs.index((i1, ir3)), i1), []).append(p)
    for (i_out, i1), ps in sorted(members.items()):
        recipe.append(
            tuple((a[i1].ir.l, b[paths[p][1]].ir.l, y_irreps[i_out].ir.l, offsets[paths[p][1]], 0.7 + p) for p in ps)
        )
        blocks.append((i1, i_out, tuple(weight_offsets[p] for p in ps)))
    K = coupling_matrix(b.dim, tuple(recipe), dtype=dtype)
    t = table(tuple((m, ir.dim) for m, ir in a), tuple((m, ir.dim) for m, ir in y_irreps), tuple(blocks), K)
    g = torch.Generator().manual_seed(sum(muls) + sh)
    x = torch.randn(n, a.dim, generator=g, dtype=dtype)
    m = torch.randn(n, b.dim, generator=g, dtype=dtype) @ K
    w = torch.randn(*(() if shared else (n,)), total, generator=g, dtype=dtype)
    sizes = [a.dim, K.shape[1], total, y_irreps.dim]
    return (x, m, w, t, sizes), (a, y_irreps, tuple(blocks), tuple(recipe), K)


def op_sizes(sizes: list[int]) -> list[int]:
    """The op's sizes ``[X, Z, M, W, Y]`` of a table without z (what ``channelwise`` passes)."""
    return [sizes[0], 0, *sizes[1:]]


def reference(x, m, w, layout):  # type: ignore[no-untyped-def]
    """The coupling block by block with einsums: y[u, k] += sum_i M_p[k, i] w_p[u] x[u, i]."""
    a, y_irreps, blocks, recipe, _ = layout
    n = x.shape[0]
    w = w.expand(n, -1)
    a_off = [0, *torch.tensor([mul * ir.dim for mul, ir in a]).cumsum(0).tolist()]
    y_off = [0, *torch.tensor([mul * ir.dim for mul, ir in y_irreps]).cumsum(0).tolist()]
    y = x.new_zeros(n, y_irreps.dim)
    column = 0
    for (i1, i_out, w_offsets), members in zip(blocks, recipe, strict=True):
        mul, d1, d3 = a[i1].mul, a[i1].ir.dim, y_irreps[i_out].ir.dim
        width = len(members) * d1
        matrices = m[:, column : column + d3 * width].reshape(n, d3, len(members), d1)
        xs = x[:, a_off[i1] : a_off[i1 + 1]].reshape(n, mul, d1)
        for j, w_off in enumerate(w_offsets):
            term = torch.einsum("nki,nu,nui->nuk", matrices[:, :, j], w[:, w_off : w_off + mul], xs)
            y[:, y_off[i_out] : y_off[i_out + 1]] += term.reshape(n, mul * d3)
        column += d3 * width
    return y


def paired(channels: int, sh: int, shared: bool, dtype: torch.dtype = torch.float64, n: int = 5, pairs: int = 30):
    """A paired table: ``t = (x, z)`` channel by channel with random pair entries, ``x = C x (0e + 1o)``, ``z = C x
    (0e + 1o + 2e)``, ``t = C x (0e + 1o + 2e)``, then t coupled as :func:`case` couples ``a``.  Returns
    ``(x, z, m, w, table, sizes)`` and what :func:`paired_reference` needs."""
    (_, m, w, _, sizes), layout = case((channels,) * 3, sh, shared, dtype, n)
    a, y_irreps, blocks, _, K = layout
    g = torch.Generator().manual_seed(channels + 10 * sh)
    x_dims, z_dims = (1, 3), (1, 3, 5)
    entries = tuple(
        (int(torch.randint(0, 9, (), generator=g)), int(torch.randint(0, 4, (), generator=g)),
         int(torch.randint(0, 9, (), generator=g)), float(torch.randn((), generator=g, dtype=torch.float64)))
        for _ in range(pairs)
    )  # fmt: skip
    pair = Pair(tuple((channels, d) for d in x_dims), tuple((channels, d) for d in z_dims), entries)
    t = table(tuple((mm, ir.dim) for mm, ir in a), tuple((mm, ir.dim) for mm, ir in y_irreps), blocks, K, pair)
    x = torch.randn(n, 4 * channels, generator=g, dtype=dtype)
    z = torch.randn(n, 9 * channels, generator=g, dtype=dtype)
    return (x, z, m, w, t, [x.shape[1], *sizes[1:]]), (layout, pair)


def channels_of(x: torch.Tensor, dims: tuple[int, ...], mul: int) -> torch.Tensor:
    """``[n, mul, components]`` of a ``mul_ir`` row whose blocks all have ``mul`` channels."""
    parts = x.split([mul * d for d in dims], dim=1)
    return torch.cat([p.reshape(len(x), mul, d) for p, d in zip(parts, dims, strict=True)], 2)


def paired_reference(x, z, m, w, layout):  # type: ignore[no-untyped-def]
    """t from its pair entries, one einsum each, then :func:`reference` with t as ``a``."""
    inner, pair = layout
    mul = pair.x_blocks[0][0]
    xs = channels_of(x, tuple(d for _, d in pair.x_blocks), mul)
    zs = channels_of(z, tuple(d for _, d in pair.z_blocks), mul)
    t_dims = (1, 3, 5)
    t = x.new_zeros(len(x), mul, sum(t_dims))
    for l, i, j, v in pair.entries:
        t[:, :, l] += v * torch.einsum("nu,nu->nu", xs[:, :, i], zs[:, :, j])
    t_rows = torch.cat([p.reshape(len(x), -1) for p in t.split(list(t_dims), dim=2)], 1)
    return reference(t_rows, m, w, inner)
