"""Pointwise nonlinearities of scalar wires (``silu(x)``), as e3nn's ``nn.Activation`` applies them.

Each function is normalized to unit second moment under a standard normal input, the constant e3nn's
``normalize2mom`` computes: ``E[f(z)^2]^(-1/2)`` over the same one million float64 samples of ``torch.randn`` seeded
with 0, and exactly 1 where that is within 1e-4 of 1.  Parity follows e3nn's rule: an even scalar (``0e``) stays
even; an odd one (``0o``) needs an odd function (the output is odd) or an even one (the output is even), and any
other function of an odd scalar would break equivariance.
"""

from __future__ import annotations

import functools
import math
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

#: name -> (parity: 1 even, -1 odd, 0 neither; its expression in generated code, ``{x}`` the input)
FUNCTIONS: dict[str, tuple[int, str]] = {
    "silu": (0, "torch.nn.functional.silu({x})"),
    "tanh": (-1, "torch.tanh({x})"),
    "sigmoid": (0, "torch.sigmoid({x})"),
    "relu": (0, "torch.relu({x})"),
    "abs": (1, "torch.abs({x})"),
    "softplus": (0, "torch.nn.functional.softplus({x})"),
    "ssp": (0, f"(torch.nn.functional.softplus({{x}}) - {math.log(2.0)!r})"),
    "gelu": (0, "torch.nn.functional.gelu({x})"),
}


@functools.cache
def normalization(name: str) -> float:
    """e3nn's ``normalize2mom`` constant of a function (1.0 where it is within 1e-4 of 1), evaluated from the same
    expression the generated code runs (codegen asks for it; checking a file does not import torch)."""
    import torch

    z = torch.randn(1_000_000, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    constant = _evaluate(name, z).pow(2).mean().pow(-0.5).item()
    return 1.0 if abs(constant - 1) < 1e-4 else constant


def _evaluate(name: str, x: torch.Tensor) -> torch.Tensor:
    import torch

    value: torch.Tensor = eval(FUNCTIONS[name][1].format(x="x"), {"torch": torch}, {"x": x})  # our own table's text
    return value


def expression(name: str, x: str) -> str:
    """The generated code of ``name`` applied to ``x``, normalized."""
    scale = normalization(name)
    code = FUNCTIONS[name][1].format(x=x)
    return code if scale == 1.0 else f"{code} * {scale!r}"
