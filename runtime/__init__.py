"""fdg.runtime: everything a generated module needs at run time.

Irreps, exact Clebsch–Gordan / Wigner 3j tables, Wigner D matrices, rotations and spherical harmonics, all in the
conventions of e3nn ≥ 0.5 (see ``docs/conventions.md``), and ``FdgModule``, the base class of generated modules.
Depends only on torch: e3nn is a test-only reference.

>>> from fdg.runtime import Irreps, spherical_harmonics, wigner_3j
>>> Irreps.spherical_harmonics(2).dim
9
"""

from .irreps import Irrep, Irreps, MulIr
from .module import FdgModule, load_source
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

__all__ = [
    "FdgModule",
    "Irrep",
    "Irreps",
    "MulIr",
    "angles_to_matrix",
    "load_source",
    "matrix_to_angles",
    "rand_angles",
    "rand_matrix",
    "so3_generators",
    "spherical_harmonics",
    "wigner_3j",
    "wigner_D",
]
