"""fdg.runtime: everything a generated module needs at run time.

Irreps, exact Clebsch–Gordan / Wigner 3j tables, Wigner D matrices, rotations and spherical harmonics, all in the
conventions of e3nn ≥ 0.5 (see ``docs/conventions.md``), and ``FdgModule``, the base class of generated modules.
Depends only on torch: e3nn is a test-only reference.

>>> from fdg.runtime import Irreps, spherical_harmonics, wigner_3j
>>> Irreps.spherical_harmonics(2).dim
9
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

# Each name loads its module on first use: the compiler reads ``Irreps`` and the exact counting tables without torch
# (``fdg check`` never imports it), while generated modules reach everything as ``fdg.runtime.NAME``.
_WHERE = {
    "FdgModule": "module",
    "load_source": "module",
    "Declared": "inputs",
    "FdgInputError": "inputs",
    "check_inputs": "inputs",
    "Irrep": "irreps",
    "Irreps": "irreps",
    "MulIr": "irreps",
    "SymmetricBasis": "power_basis",
    "symmetric_basis": "power_basis",
    "SymmetricPower": "power",
    "angles_to_matrix": "wigner",
    "matrix_to_angles": "wigner",
    "rand_angles": "wigner",
    "rand_matrix": "wigner",
    "so3_generators": "wigner",
    "wigner_3j": "wigner",
    "wigner_D": "wigner",
    "channelwise": "channelwise_op",
    "chunked": "grouped",
    "permute_columns": "grouped",
    "sparse_matmul": "grouped",
    "spherical_harmonics": "sh",
    "edge_length": "radial",
    "bessel": "radial",
    "polynomial_cutoff": "radial",
    "symmetric_power_decomposition": "characters",
    "symmetric_power_multiplicity": "characters",
}
_RENAMED = {"channelwise_available": ("channelwise_op", "available")}

__all__ = [
    "Declared",
    "FdgInputError",
    "FdgModule",
    "Irrep",
    "Irreps",
    "MulIr",
    "SymmetricBasis",
    "SymmetricPower",
    "angles_to_matrix",
    "bessel",
    "channelwise",
    "channelwise_available",
    "check_inputs",
    "chunked",
    "edge_length",
    "fusion",
    "load_source",
    "matrix_to_angles",
    "permute_columns",
    "polynomial_cutoff",
    "rand_angles",
    "rand_matrix",
    "so3_generators",
    "sparse_matmul",
    "spherical_harmonics",
    "symmetric_basis",
    "symmetric_power_decomposition",
    "symmetric_power_multiplicity",
    "wigner_3j",
    "wigner_D",
]

if TYPE_CHECKING:
    from . import fusion
    from .channelwise_op import available as channelwise_available
    from .channelwise_op import channelwise
    from .characters import symmetric_power_decomposition, symmetric_power_multiplicity
    from .grouped import chunked, permute_columns, sparse_matmul
    from .irreps import Irrep, Irreps, MulIr
    from .module import FdgModule, load_source
    from .power import SymmetricPower
    from .power_basis import SymmetricBasis, symmetric_basis
    from .radial import bessel, edge_length, polynomial_cutoff
    from .sh import spherical_harmonics
    from .wigner import (
        angles_to_matrix,
        matrix_to_angles,
        rand_angles,
        rand_matrix,
        so3_generators,
        wigner_3j,
        wigner_D,
    )


def __getattr__(name: str) -> Any:
    if name == "fusion":
        value: Any = importlib.import_module(f"{__name__}.fusion")
    elif name in _WHERE:
        value = getattr(importlib.import_module(f"{__name__}.{_WHERE[name]}"), name)
    elif name in _RENAMED:
        module, attr = _RENAMED[name]
        value = getattr(importlib.import_module(f"{__name__}.{module}"), attr)
    else:
        raise AttributeError(f"module 'fdg.runtime' has no attribute {name!r}")
    globals()[name] = value  # later lookups (and torch.compile's) find a plain module attribute
    return value
