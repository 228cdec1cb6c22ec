"""``FdgModule``: the base class of every generated module, and loading generated source.

A generated module is a plain ``torch.nn.Module`` plus three class-level tables (``inputs``,
``outputs``, ``weight_numel``) and constant buffers registered with :meth:`FdgModule.register_cg` (a Wigner 3j
tensor), :meth:`FdgModule.register_coupling` (CG tensors of several paths arranged for the grouped lowering) or
:meth:`FdgModule.register_fusion` (a table of a ``fuse`` vertex).

Two details matter for users:

* Constant buffers are re-derived from the exact float64 tables whenever the module changes dtype or
  device (``.double()``, ``.to("cuda")``), so a module built in float32 and moved to float64 has
  float64-exact CG tensors rather than float32 values widened.
* A generated class is created from source at run time, so pickle cannot find it by import path.
  Instances pickle as *(source, class name, state)* and are rebuilt from that source
  (``torch.save(module)`` / ``torch.load(..., weights_only=False)``; ``state_dict`` works as usual).
"""

from __future__ import annotations

import functools
import hashlib
import linecache
import types
from collections.abc import Callable
from typing import Any, ClassVar

import torch

from fdg.runtime.channelwise_op import Pair, table
from fdg.runtime.fusion_paths import FuseSpec
from fdg.runtime.fusion_tables import FuseTable, fusion_table, fusion_values
from fdg.runtime.grouped import BlockPath, coupling_entries, coupling_matrix, coupling_values, transposition
from fdg.runtime.inputs import Declared
from fdg.runtime.wigner import wigner_3j

#: builds a constant buffer exactly at a dtype and device
_Exact = Callable[..., torch.Tensor]


def index_of(name: str) -> str:
    """The buffer holding the integer index that a ``register_*`` call stores beside the values of buffer ``name``."""
    return f"{name}_index"


def inverse_of(name: str) -> str:
    """The buffer holding the inverse of the permutation :meth:`FdgModule.register_transposition` stores as ``name``."""
    return f"{name}_inverse"


class FdgModule(torch.nn.Module):
    """Base class of compiled fusion diagrams."""

    #: input name -> description (``"32x0e+32x1o over node"``, ``"index edge -> node"``, ``"weights[480] over edge"``)
    inputs: ClassVar[dict[str, str]] = {}
    #: output name -> description, in declaration order
    outputs: ClassVar[dict[str, str]] = {}
    #: external weights input name -> number of weights per sample
    weight_numel: ClassVar[dict[str, int]] = {}
    #: each input as ``forward`` takes it, for :func:`fdg.runtime.inputs.check_inputs`
    declared: ClassVar[tuple[Declared, ...]] = ()
    #: the generated source this class was built from (set by :func:`load_source`)
    source: ClassVar[str] = ""
    #: the cost report of the plan (``fdg.reporting.report.Report``), set on modules made by ``fdg.compile``
    report: Any = None

    def __init__(self) -> None:
        super().__init__()
        self._exact: dict[str, _Exact] = {}
        #: check every call's inputs against ``declared`` (``False``: for deployment, where inputs are known right)
        self.checks = True

    def register_cg(self, name: str, l1: int, l2: int, l3: int) -> None:
        """Register the e3nn-convention Wigner 3j tensor ``(l1, l2, l3)`` as buffer ``name``."""
        self._register_exact(name, functools.partial(wigner_3j, l1, l2, l3))

    def register_coupling(self, name: str, rows: int, blocks: tuple[tuple[BlockPath, ...], ...]) -> None:
        """Register :func:`fdg.runtime.grouped.coupling_matrix` ``(rows, blocks)`` as buffer ``name``."""
        self._register_exact(name, functools.partial(coupling_matrix, rows, blocks))

    def register_transposition(self, name: str, blocks: tuple[tuple[int, int], ...]) -> None:
        """Register :func:`fdg.runtime.grouped.transposition` ``(blocks)`` (``ir_mul`` to ``mul_ir``) as buffer
        ``name`` and its inverse as ``name_inverse``; both follow ``.to()`` and stay out of the ``state_dict``."""
        index = transposition(blocks)
        self.register_buffer(name, index, persistent=False)
        self.register_buffer(inverse_of(name), torch.argsort(index), persistent=False)

    def register_channelwise(
        self,
        name: str,
        matrix: str,
        a_blocks: tuple[tuple[int, int], ...],
        y_blocks: tuple[tuple[int, int], ...],
        blocks: tuple[tuple[int, int, tuple[int, ...]], ...],
        pair: Pair | None = None,
    ) -> None:
        """Register the native kernel's table (:func:`fdg.runtime.channelwise_op.table`) of the coupling whose matrix is
        buffer ``matrix`` (with ``pair``: paired, the channels coupled computed from two operands) as buffer ``name``
        (integers: it follows ``.to(device)``, not dtypes; not in the ``state_dict``)."""
        self.register_buffer(name, table(a_blocks, y_blocks, blocks, getattr(self, matrix), pair), persistent=False)

    def register_sparse_coupling(self, name: str, rows: int, blocks: tuple[tuple[BlockPath, ...], ...]) -> None:
        """Register the non-zeros of that matrix: values as buffer ``name``, their (row, column) as ``name_index``."""
        self._register_exact(name, functools.partial(coupling_values, rows, blocks))
        self.register_buffer(index_of(name), coupling_entries(rows, blocks)[0], persistent=False)

    def register_fusion(self, name: str, spec: FuseSpec, table: FuseTable) -> None:
        """Register ``table`` of a fuse vertex (:func:`fdg.runtime.fusion_tables.fusion_table`): its values as
        buffer ``name`` (re-derived exactly on a dtype change), its integer index, if any, as ``name_index``."""
        values, index = fusion_table(spec, table)
        if values is not None:
            self._register_exact(name, functools.partial(fusion_values, spec, table))
        if index is not None:
            self.register_buffer(index_of(name), index, persistent=False)

    def _register_exact(self, name: str, make: _Exact) -> None:
        self._exact[name] = make
        self.register_buffer(name, make(dtype=torch.get_default_dtype()))

    def _apply(self, fn: Callable[[torch.Tensor], torch.Tensor], recurse: bool = True) -> FdgModule:
        super()._apply(fn, recurse)
        for name, make in self._exact.items():
            old = self._buffers[name]
            if old is not None:  # re-derive rather than cast: exact at the new dtype
                self._buffers[name] = make(dtype=old.dtype, device=old.device)
        return self

    def __reduce__(self) -> tuple[Callable[..., FdgModule], tuple[Any, ...]]:
        if not self.source:
            raise TypeError(f"{type(self).__name__} was not built by fdg.runtime.load_source and cannot be pickled")
        state = {k: v.detach().cpu() for k, v in self.state_dict().items()}
        return _rebuild, (self.source, type(self).__name__, state, self.training, self.checks)


def load_source(source: str, class_name: str) -> type[FdgModule]:
    """Execute generated module source and return its class (source kept for pickling and tracebacks)."""
    digest = hashlib.sha1(source.encode()).hexdigest()[:12]
    filename = f"<fdg-generated {class_name} {digest}>"
    # tracebacks and inspect.getsource look source lines up by filename
    linecache.cache[filename] = (len(source), None, source.splitlines(keepends=True), filename)
    module = types.ModuleType(f"fdg_generated_{digest}")
    exec(compile(source, filename, "exec"), module.__dict__)
    cls: type[FdgModule] = module.__dict__[class_name]
    cls.source = source
    return cls


def _rebuild(
    source: str, class_name: str, state: dict[str, torch.Tensor], training: bool, checks: bool = True
) -> FdgModule:
    module = load_source(source, class_name)()
    module.checks = checks
    dtypes = {t.dtype for t in state.values() if t.is_floating_point()}
    if len(dtypes) == 1:  # load_state_dict copies into existing tensors: match their dtype first
        module.to(dtypes.pop())
    module.load_state_dict(state)
    module.train(training)
    return module
