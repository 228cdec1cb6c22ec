"""``fuse`` written out path by path: its definition (docs/conventions.md), as a slow reference.

The paths are enumerated here by nested loops over each input's irreps and the degrees after each coupling, with
dense Wigner 3j tensors along the left-to-right tree: none of the tree, layout or table machinery that compiled
modules use (``fusion_paths``, ``fusion_tables``).  ``tests/planning/test_fuse.py`` and ``benchmarks/fusion.py`` compare
against it.
"""

from __future__ import annotations

import itertools
import math

import torch

from fdg.runtime.irreps import Irrep, Irreps
from fdg.runtime.wigner import wigner_3j


def naive_fuse(inputs: list[torch.Tensor], irreps: list[Irreps], out: Irreps, weights: torch.Tensor) -> torch.Tensor:
    """``fuse`` along the left-to-right tree written out path by path (docs/conventions.md), as a reference.

    ``inputs[k]`` is ``[n, irreps[k].dim]`` (each input one multiplicity, or 1); ``weights`` ``[paths, mul]``.
    Paths are the nested loops over each input's irreps, then the degree after each coupling (ascending), then the
    output irreps; path ``p`` into output ``k`` is scaled by ``sqrt((2L + 1) prod (2l + 1) / N_k)``.
    """
    mul = max(i[0].mul for i in irreps)
    n = inputs[0].shape[0]
    blocks = []
    for x, r in zip(inputs, irreps, strict=True):
        parts = x.split([m * i.dim for m, i in r], 1)
        blocks.append([b.reshape(n, m, i.dim).expand(n, mul, i.dim) for b, (m, i) in zip(parts, r, strict=True)])
    paths: list[tuple[tuple[int, ...], tuple[int, ...], int]] = []
    for leaves in itertools.product(*(range(len(r)) for r in irreps)):
        irs = [irreps[k][i].ir for k, i in enumerate(leaves)]
        for chain in _chains(irs, (irs[0].l, irs[0].p), 1):
            degrees, (l_top, p_top) = tuple(l for l, _ in chain[1:-1]), chain[-1]
            for k, (_, ir_out) in enumerate(out):
                if (l_top, p_top) == (ir_out.l, ir_out.p):
                    paths.append((leaves, degrees, k))
    count = [sum(1 for *_, k in paths if k == j) for j in range(len(out))]
    result = [inputs[0].new_zeros(n, mul, ir.dim) for _, ir in out]
    for w, (leaves, inner, k) in zip(weights, paths, strict=True):
        ls = [*inner, out[k].ir.l]
        value = blocks[0][leaves[0]]
        for step in range(1, len(irreps)):
            l_prev = irreps[0][leaves[0]].ir.l if step == 1 else ls[step - 2]
            cg = wigner_3j(l_prev, irreps[step][leaves[step]].ir.l, ls[step - 1], dtype=value.dtype)
            value = torch.einsum("zua,zub,abc->zuc", value, blocks[step][leaves[step]], cg)
        alpha = math.sqrt(out[k].ir.dim * math.prod(2 * l + 1 for l in inner) / count[k])
        result[k] = result[k] + alpha * w.view(1, mul, 1) * value
    return torch.cat([r.reshape(n, -1) for r in result], dim=1)


def _chains(irs: list[Irrep], current: tuple[int, int], k: int) -> list[tuple[tuple[int, int], ...]]:
    """Every sequence of (degree, parity) after coupling ``irs[k:]`` one by one, degrees ascending at each step."""
    if k == len(irs):
        return [(current,)]
    l, p = current
    found = []
    for l2 in range(abs(l - irs[k].l), l + irs[k].l + 1):
        found += [((l, p), *rest) for rest in _chains(irs, (l2, p * irs[k].p), k + 1)]
    return found
