"""Random inputs for a compiled module, read off its ``inputs`` table (shared by several tests)."""

from __future__ import annotations

import torch

from fdg.runtime import FdgModule, Irreps

#: batch size used for each named axis
AXIS_SIZES = {"node": 5, "edge": 13, "batch": 6}


def random_inputs(
    module: FdgModule, dtype: torch.dtype = torch.float64, generator: int = 0, sizes: dict[str, int] | None = None
) -> dict[str, torch.Tensor]:
    """One tensor per input: features ``[axis, dim]``, weights ``[axis, numel]``, indices in range."""
    g = torch.Generator().manual_seed(generator)
    table = {**AXIS_SIZES, **(sizes or {})}

    def axis_size(axis: str) -> int:
        return int(axis) if axis.isdigit() else table.get(axis, 4)

    out = {}
    for name, text in module.inputs.items():
        if text.startswith("index "):
            axis, target = text.removeprefix("index ").split(" -> ")
            out[name] = torch.randint(0, axis_size(target), (axis_size(axis),), generator=g)
        elif text.startswith("weights["):
            numel, axis = text.removeprefix("weights[").split("] over ")
            out[name] = torch.randn(axis_size(axis), int(numel), generator=g, dtype=dtype)
        else:
            irreps, axis = text.split(" over ")
            out[name] = torch.randn(axis_size(axis), Irreps(irreps).dim, generator=g, dtype=dtype)
    return out


def feature_irreps(description: str) -> Irreps | None:
    """The irreps of a feature input/output description, None for indices and weights."""
    if description.startswith(("index ", "weights[")):
        return None
    return Irreps(description.split(" over ")[0])
