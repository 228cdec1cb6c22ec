"""fdg.runtime: everything a generated module needs at run time.

Irreps, exact Clebsch–Gordan / Wigner 3j tables, Wigner D matrices, rotations and spherical harmonics, all in the
conventions of e3nn ≥ 0.5 (see ``docs/conventions.md``), and ``FdgModule``, the base class of generated modules.
Depends only on torch: e3nn is a test-only reference.

>>> from fdg.runtime import Irreps, spherical_harmonics, wigner_3j
>>> Irreps.spherical_harmonics(2).dim
9
"""

from typing import TYPE_CHECKING, Any

from . import fusion
from .channelwise import available as channelwise_available
from .channelwise import channelwise
from .characters import symmetric_power_decomposition, symmetric_power_multiplicity
from .grouped import chunked, permute_columns, sparse_matmul
from .irreps import Irrep, Irreps, MulIr
from .module import FdgModule, load_source
from .power import SymmetricPower
from .symmetric_basis import SymmetricBasis, symmetric_basis
from .wigner import (
    angles_to_matrix,
    matrix_to_angles,
    rand_angles,
    rand_matrix,
    so3_generators,
    wigner_3j,
    wigner_D,
)

__all__ = [
    "FdgModule",
    "Irrep",
    "Irreps",
    "MulIr",
    "SymmetricBasis",
    "SymmetricPower",
    "angles_to_matrix",
    "channelwise",
    "channelwise_available",
    "chunked",
    "fusion",
    "load_source",
    "matrix_to_angles",
    "permute_columns",
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
    from .sh import spherical_harmonics


def __getattr__(name: str) -> Any:
    # sh.py marks its tables constant for torch.compile, which imports all of torch._dynamo (about 2 s); the compiler
    # and `fdg check` never need it, so it loads on first use.
    if name == "spherical_harmonics":
        from .sh import spherical_harmonics

        globals()[name] = spherical_harmonics
        return spherical_harmonics
    raise AttributeError(f"module 'fdg.runtime' has no attribute {name!r}")
