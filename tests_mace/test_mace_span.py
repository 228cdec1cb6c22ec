"""fdg's ``power`` spans exactly the function space of MACE's ``SymmetricContraction``, with no redundant weight.

Run in the MACE environment (``make test-mace``: mace-torch pins e3nn 0.4.4, so it is kept out of ``make test``).

Both modules are linear in their weights, so the outputs they can produce on a batch are the column space of the
Jacobian of the outputs with respect to the weights. Per species (a node's outputs depend only on its species'
weights), on random inputs in float64:

* fdg's Jacobian has full column rank: every weight counts, and fdg's weight count *is* the dimension;
* MACE's Jacobian has the same rank, with more columns (its basis is over-complete);
* the two column spaces coincide: the rank of both side by side equals each rank.

With enough random nodes the rank on the batch is the dimension of the space of functions (a polynomial map that
vanishes on that many random points is zero), so the three checks together say: same span, minimal basis.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable

os.environ.setdefault("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")  # e3nn 0.4.4 torch.load()s pickled constants

import pytest
import torch
from e3nn import o3
from mace.modules.symmetric_contraction import SymmetricContraction

import fdg

warnings.filterwarnings("ignore", message="The TorchScript type system")  # raised inside MACE's own modules

CASES = [  # (lmax of the input, correlation, output irreps, multiplicity, species)
    (3, 3, "0e + 1o", 2, 2),  # SPEC section 3: 116 weights where MACE has 344
    (2, 2, "0e + 1o + 2e", 2, 3),
    (1, 3, "0e + 1o + 2e", 3, 1),
    (3, 1, "0e + 1o", 2, 2),
    (2, 4, "0e + 1o", 1, 2),  # MACE keeps natural-parity intermediates only at correlation 4
]


def source(lmax: int, nu: int, out: str, mul: int, species: int) -> str:
    irreps = " + ".join(f"{l}{'eo'[l % 2]}" for l in range(lmax + 1))
    return f"""
diagram P(mul = {mul}) {{
    input A : mul x ({irreps}) over node
    input z : index node -> {species}
    output B = power(A, {nu}) -> mul x ({out}) [weights = learned[z]]
}}"""


def jacobian(module: torch.nn.Module, run: Callable[[], tuple[torch.Tensor, ...]]) -> torch.Tensor:
    """``[outputs, weights]``: d outputs / d (all the module's weights, flattened in parameter order)."""
    names = [name for name, _ in module.named_parameters()]
    shapes = [p.shape for _, p in module.named_parameters()]
    flat = torch.cat([p.detach().flatten() for p in module.parameters()])

    def outputs(w: torch.Tensor) -> torch.Tensor:
        pieces = w.split([s.numel() for s in shapes])
        parts = {name: t.view(s) for name, t, s in zip(names, pieces, shapes, strict=True)}
        return torch.func.functional_call(module, parts, run()).flatten()

    return torch.autograd.functional.jacobian(outputs, flat)


def rank(matrix: torch.Tensor) -> int:
    s = torch.linalg.svdvals(matrix)
    return int((s > 1e-9 * s[0]).sum())


@pytest.mark.parametrize(("lmax", "nu", "out", "mul", "species"), CASES)
def test_same_span_as_mace_with_minimal_weights(lmax: int, nu: int, out: str, mul: int, species: int) -> None:
    ours = fdg.compile(source(lmax, nu, out, mul, species))
    irreps_in = o3.Irreps([(mul, (l, (-1) ** l)) for l in range(lmax + 1)])
    irreps_out = o3.Irreps([(mul, ir) for _, ir in o3.Irreps(out.replace(" ", ""))])
    theirs = SymmetricContraction(irreps_in, irreps_out, correlation=nu, num_elements=species)

    per_species_nodes = 40
    n = species * per_species_nodes
    x = torch.randn(n, mul, (lmax + 1) ** 2)  # MACE's layout: [node, channel, (lmax+1)^2]
    a = torch.cat([x[:, :, l * l : (l + 1) ** 2].reshape(n, -1) for l in range(lmax + 1)], 1)  # fdg's: mul_ir
    z = torch.arange(n) % species
    attrs = torch.nn.functional.one_hot(z, species).double()

    j_ours = jacobian(ours, lambda: (a, z))
    j_theirs = jacobian(theirs, lambda: (x, attrs))
    assert j_ours.shape[0] == j_theirs.shape[0] == n * irreps_out.dim
    (weight,) = ours.parameters()
    assert weight.shape[0] == species  # fdg: [species, numel]; MACE: [species, paths, channels] per output and degree
    rows = torch.arange(n * irreps_out.dim) // irreps_out.dim  # the node of each output row
    ours_by_species = torch.arange(j_ours.shape[1]) // weight.shape[1]
    theirs_by_species = _mace_species_of_columns(theirs, species)
    for s in range(species):
        mine = j_ours[rows % species == s][:, ours_by_species == s]
        mace = j_theirs[rows % species == s][:, theirs_by_species == s]
        assert not j_ours[rows % species == s][:, ours_by_species != s].any()  # only its own species' weights
        dimension = rank(mine)
        assert dimension == mine.shape[1] == weight.shape[1], "fdg: one weight per dimension"
        assert rank(mace) == dimension, "the same dimension"
        assert rank(torch.cat([mine, mace], 1)) == dimension, "the same column space"
        assert mace.shape[1] > dimension or nu == 1, "MACE's basis is over-complete"
    if (lmax, nu, out, mul, species) == CASES[0]:
        assert j_ours.shape[1] == 116 and j_theirs.shape[1] == 344


def _mace_species_of_columns(module: torch.nn.Module, species: int) -> torch.Tensor:
    """The species of each MACE weight: every parameter is ``[species, paths, channels]``."""
    parts = []
    for p in module.parameters():
        assert p.shape[0] == species
        parts.append(torch.arange(species).repeat_interleave(p[0].numel()))
    return torch.cat(parts)
