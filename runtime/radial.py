"""Edge lengths and radial bases, as MACE and NequIP build their radial features (generated code calls these).

``bessel(r, n, r_max)`` is MACE's ``BesselBasis`` (and NequIP's, with its weights not trained):
``sqrt(2 / r_max) * sin(k pi r / r_max) / r`` for ``k = 1 .. n``, e3nn's ``soft_one_hot_linspace(basis="bessel",
cutoff=False)``.  ``polynomial_cutoff(r, r_max, p)`` is their ``PolynomialCutoff``: the polynomial envelope of
degree ``p + 2`` that goes smoothly to zero at ``r_max``, zero beyond.  All are torch expressions, differentiable twice
away from ``r = 0``.
"""

from __future__ import annotations

import math

import torch

Tensor = torch.Tensor


def edge_length(vec: Tensor) -> Tensor:
    """``[n, 1]`` lengths of the vectors ``vec [n, 3]``."""
    return torch.linalg.vector_norm(vec, dim=1, keepdim=True)


def bessel(r: Tensor, n: int, r_max: float) -> Tensor:
    """``[rows, n]``: the first ``n`` Bessel functions of the lengths ``r [rows, 1]``.

    >>> bessel(torch.tensor([[1.0]]), 2, 2.0).tolist()  # sin(pi / 2) / 1, sin(pi) / 1, times sqrt(2 / 2)
    [[1.0, -8.742277657347586e-08]]
    """
    k = torch.arange(1, n + 1, dtype=r.dtype, device=r.device) * (math.pi / r_max)
    return math.sqrt(2.0 / r_max) * torch.sin(k * r) / r


def polynomial_cutoff(r: Tensor, r_max: float, p: int) -> Tensor:
    """``[rows, 1]``: ``1 - (p+1)(p+2)/2 x^p + p(p+2) x^(p+1) - p(p+1)/2 x^(p+2)`` of ``x = r / r_max``, 0 beyond."""
    x = r / r_max
    envelope = (
        1.0 - (p + 1.0) * (p + 2.0) / 2.0 * x**p + p * (p + 2.0) * x ** (p + 1) - p * (p + 1.0) / 2.0 * x ** (p + 2)
    )
    return envelope * (x < 1.0)
