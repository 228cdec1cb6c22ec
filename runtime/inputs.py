"""What a compiled module checks about its inputs before it computes anything.

Every generated ``forward`` starts with ``fdg.runtime.check_inputs(self, ...)`` over its inputs, which the class
declares in ``declared`` (one :class:`Declared` per input, in order).  Each input must be a tensor of its declared
shape (``[axis, irreps dim]`` for features, ``[axis, numel]`` for external weights, ``[axis]`` for an index), the
same size along each axis as every other input over it, a floating dtype (the module's, where it holds parameters or
buffers; else the one most inputs have) or an integer one for an index, on the module's device (else the most
common), and an index must point inside its target axis.
A mismatch raises :class:`FdgInputError` naming the input, its declaration and what was given, never a wrong
result: broadcasting, a missing row axis or a flat weight vector would otherwise compute something else.

The checks cost a few microseconds of Python per call and one ``aminmax`` per index (``benchmarks/checks.py``
measures it).  Under ``torch.compile`` and ``torch.export`` the shape, dtype and device checks become
guards of the traced graph; the index range, which depends on the values, is checked only in eager calls.
``module.checks = False`` turns every check off (for deployment, where inputs are known to be right).
"""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING, Any, NamedTuple, NoReturn

import torch

if TYPE_CHECKING:
    from fdg.runtime.module import FdgModule

#: the integer dtypes an index may have (``index_select`` and ``index_add`` take both)
INDEX_DTYPES = (torch.int64, torch.int32)
#: the dtypes a module computes in (its CG tables are exact in both)
FLOAT_DTYPES = (torch.float32, torch.float64)


class FdgInputError(ValueError):
    """A compiled module was called with an input that does not match its declaration."""


class Declared(NamedTuple):
    """One input of a compiled module, as the generated class declares it."""

    name: str
    kind: str  # "features", "weights" or "index"
    axis: str  # the axis of its rows
    width: int = 0  # features: the irreps' dimension; weights: their number per row; index: 0 (one value per row)
    target: str = ""  # index: the axis its values point into
    bound: int | None = None  # index: its fixed range (``index edge -> 4``), where it has one


def check_inputs(module: FdgModule, *values: Any) -> None:
    """Raise :class:`FdgInputError` unless ``values`` match ``module.declared`` (see the module docstring)."""
    declared: tuple[Declared, ...] = module.declared
    dtype, device = _reference(module, declared, values)
    sizes: dict[str, tuple[int, str]] = {}  # axis -> (rows, the input that fixed it)
    for d, value in zip(declared, values, strict=True):
        _check_tensor(module, d, value, dtype, device)
        shape = [d.axis] if d.kind == "index" else [d.axis, str(d.width)]
        if value.dim() != len(shape) or (d.kind != "index" and value.shape[1] != d.width):
            _fail(module, d, f"expected [{', '.join(shape)}] for {module.inputs[d.name]}, got {list(value.shape)}")
        rows, (known, source) = value.shape[0], sizes.setdefault(d.axis, (value.shape[0], d.name))
        if rows != known:
            many = f"{rows} row" + ("s" if rows != 1 else "")
            _fail(module, d, f"has {many} along {d.axis}, but `{source}` has {known}: inputs over one axis agree")
    if _tracing():
        return  # index values are data: a traced graph cannot branch on them
    for d, value in zip(declared, values, strict=True):
        if d.kind == "index" and value.numel():
            _check_range(module, d, value, sizes)


def _tracing() -> bool:
    """Whether torch.compile or torch.export is tracing this call (``is_exporting`` is torch >= 2.5's)."""
    exporting = getattr(torch.compiler, "is_exporting", lambda: False)
    return bool(torch.compiler.is_compiling() or exporting())


def _reference(module: FdgModule, declared: tuple[Declared, ...], values: tuple[Any, ...]) -> tuple[Any, Any]:
    """The dtype and device inputs must have: the module's floating state's, else those most inputs have."""
    for t in (*module.parameters(), *module.buffers()):
        if t.is_floating_point():
            return t.dtype, t.device
    tensors = [(d, v) for d, v in zip(declared, values, strict=False) if isinstance(v, torch.Tensor)]
    dtypes = Counter(v.dtype for d, v in tensors if d.kind != "index" and v.dtype in FLOAT_DTYPES)
    devices = Counter(v.device for _, v in tensors)
    return (dtypes.most_common(1)[0][0] if dtypes else None), (devices.most_common(1)[0][0] if devices else None)


def _check_tensor(module: FdgModule, d: Declared, value: Any, dtype: Any, device: Any) -> None:
    if not isinstance(value, torch.Tensor):
        _fail(module, d, f"expected a tensor for {module.inputs[d.name]}, got {type(value).__name__}")
    if d.kind == "index":
        if value.dtype not in INDEX_DTYPES:
            _fail(module, d, f"an index must be an int64 or int32 tensor, got {value.dtype}")
    elif value.dtype not in FLOAT_DTYPES:
        _fail(module, d, f"expected a float32 or float64 tensor for {module.inputs[d.name]}, got {value.dtype}")
    elif dtype is not None and value.dtype != dtype:
        _fail(module, d, f"expected {dtype} like the module and its other inputs, got {value.dtype}")
    if device is not None and value.device != device:
        _fail(module, d, f"expected a tensor on {device} like the module and its other inputs, got {value.device}")


def _check_range(module: FdgModule, d: Declared, value: torch.Tensor, sizes: dict[str, tuple[int, str]]) -> None:
    if d.bound is not None:
        limit, why = d.bound, f"its range {d.bound}"
    elif d.target in sizes:
        limit, source = sizes[d.target]
        why = f"{d.target} = {limit} (the rows of `{source}`)"
    else:
        limit, why = None, ""
    low, high = (int(v) for v in torch.aminmax(value))
    if low < 0:
        _fail(module, d, f"holds {low}: an index points into {d.target or 'its range'} from 0")
    if limit is not None and high >= limit:
        _fail(module, d, f"holds {high}, outside {why}")


def _fail(module: FdgModule, d: Declared, message: str) -> NoReturn:
    raise FdgInputError(f"{type(module).__name__} input `{d.name}`: {message}")
