"""MACE's symmetric contraction (its product basis) vs fdg's ``power``, side by side in one process.

    make venv-mace                                      # once: .venv-mace with torch 2.13.0, mace-torch, fdg
    .venv-mace/bin/python benchmarks/power.py           # 64x(0e+1o+2e+3o) -> 64x(0e+1o), correlation 3, 4 species
    options: [--nodes 2000] [--mul 64] [--species 4] [--correlation 3] [--repeat 7] [--warmup 2] [--threads N]

mace-torch pins e3nn 0.4.4, which is why it lives in its own environment, away from fdg's tests (e3nn 0.6).
Rows: fdg's compiled ``MACEProduct`` diagram (SPEC section 2), MACE's ``SymmetricContraction`` (what ``power``
replaces) and MACE's ``EquivariantProductBasisBlock`` (the same plus its linear layer). Before timing, it checks on a
small case in float64 that both span the same function space (least squares each way) with fdg's weight count equal
to its dimension, and prints MACE's (over-complete) weight counts next to fdg's.
"""

from __future__ import annotations

import argparse
import os
import time
import warnings
from collections.abc import Callable

# e3nn 0.4.4 torch.load()s its constants with pickled slices, which torch >= 2.6 refuses by default.
os.environ.setdefault("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")

import torch
from e3nn import o3
from harness import Runner, add_timing_arguments, apply_timing_arguments, describe_machine, first_call, print_ratios
from mace.modules.blocks import EquivariantProductBasisBlock
from mace.modules.symmetric_contraction import SymmetricContraction

import fdg
import fdg.api  # imported here so that the construction time below excludes module imports

warnings.filterwarnings("ignore", message="The TorchScript type system")  # raised inside MACE's own modules

POWER_SOURCE = """
diagram MACEProduct(mul = 64, nu = 3, species = 4) {
    input A : mul x (0e + 1o + 2e + 3o) over node
    input z : index node -> species
    output B = power(A, nu) -> mul x (0e + 1o) [weights = learned[z]]
}
"""
LMAX_IN = 3


def mace_irreps(mul: int) -> tuple[o3.Irreps, o3.Irreps]:
    """MACE's input and output irreps for this case: ``mul x (0e+1o+2e+3o)`` and ``mul x (0e+1o)``."""
    return o3.Irreps(f"{mul}x0e+{mul}x1o+{mul}x2e+{mul}x3o"), o3.Irreps(f"{mul}x0e+{mul}x1o")


def weight_count(module: torch.nn.Module) -> int:
    """Learned weights of a module (for MACE's ``SymmetricContraction``: its default, over-complete basis)."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


def to_mul_ir(x: torch.Tensor) -> torch.Tensor:
    """MACE's ``[n, mul, (lmax+1)^2]`` node features in fdg's (e3nn's) ``mul_ir`` layout ``[n, irreps.dim]``."""
    blocks = [x[:, :, l * l : (l + 1) * (l + 1)].reshape(x.shape[0], -1) for l in range(LMAX_IN + 1)]
    return torch.cat(blocks, dim=1)


def outputs_per_weight(module: torch.nn.Module, run: Callable[[], torch.Tensor]) -> torch.Tensor:
    """``[outputs, weights]``: the output for each unit weight vector (both modules are linear in their weights)."""
    params = list(module.parameters())
    flat = torch.cat([p.detach().flatten() for p in params])
    columns = []
    with torch.no_grad():
        for e in torch.eye(len(flat), dtype=flat.dtype):
            torch.nn.utils.vector_to_parameters(e, params)
            columns.append(run().flatten())
        torch.nn.utils.vector_to_parameters(flat, params)
    return torch.stack(columns, 1)


def check_same_space_as_mace(correlation: int, species: int = 2, mul: int = 2, n: int = 80) -> None:
    """Least squares each way, in float64: MACE's outputs (random weights) are reached by fdg's weights and fdg's
    by MACE's, so the function spaces are equal; and fdg's weight count is the rank of its outputs."""
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        ours = fdg.compile(POWER_SOURCE, mul=mul, nu=correlation, species=species)
        theirs = SymmetricContraction(*mace_irreps(mul), correlation, num_elements=species)
        x = torch.randn(n, mul, (LMAX_IN + 1) ** 2)
        z = torch.randint(0, species, (n,))
        attrs = torch.nn.functional.one_hot(z, species).double()
        design = outputs_per_weight(ours, lambda: ours(to_mul_ir(x), z))
        mace_design = outputs_per_weight(theirs, lambda: theirs(x, attrs))
        with torch.no_grad():
            pairs = (("MACE by fdg", design, theirs(x, attrs)), ("fdg by MACE", mace_design, ours(to_mul_ir(x), z)))
        for name, matrix, y in pairs:
            # SVD-based: MACE's columns are dependent
            solution = torch.linalg.lstsq(matrix, y.reshape(-1, 1), driver="gelsd").solution
            residual = (matrix @ solution - y.reshape(-1, 1)).norm() / y.norm()
            print(f"  same function space: {name}: relative residual {residual:.1e}")
            assert residual < 1e-8, name
        rank = int(torch.linalg.matrix_rank(design))
        print(f"  fdg weights {design.shape[1]} = rank of its outputs {rank}; MACE weights {mace_design.shape[1]}")
        assert rank == design.shape[1]
    finally:
        torch.set_default_dtype(previous)


def power_arguments(doc: str) -> argparse.Namespace:
    """The command line of the MACE product-basis case; seeds torch."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=2000)
    parser.add_argument("--mul", type=int, default=64)
    parser.add_argument("--species", type=int, default=4)
    parser.add_argument("--correlation", type=int, default=3)
    add_timing_arguments(parser)
    args = parser.parse_args()
    apply_timing_arguments(args)
    torch.manual_seed(0)
    return args


def main() -> None:
    args = power_arguments(__doc__)

    start = time.perf_counter()
    ours = fdg.compile(POWER_SOURCE, mul=args.mul, nu=args.correlation, species=args.species)
    built_fdg = time.perf_counter() - start
    irreps_in, irreps_out = mace_irreps(args.mul)
    start = time.perf_counter()
    contraction = SymmetricContraction(irreps_in, irreps_out, correlation=args.correlation, num_elements=args.species)
    built_mace = time.perf_counter() - start
    block = EquivariantProductBasisBlock(
        irreps_in, irreps_out, correlation=args.correlation, use_sc=False, num_elements=args.species
    )

    check_same_space_as_mace(args.correlation)
    x = torch.randn(args.nodes, args.mul, (LMAX_IN + 1) ** 2, requires_grad=True)
    A = to_mul_ir(x.detach()).requires_grad_()  # the same numbers in fdg's layout, converted outside the timed call
    z = torch.randint(0, args.species, (args.nodes,))
    attrs = torch.nn.functional.one_hot(z, args.species).to(x.dtype)
    runners: dict[str, Runner] = {
        "fdg power (compiled MACEProduct)": lambda: ours(A, z),
        "mace SymmetricContraction": lambda: contraction(x, attrs),
        "mace ProductBasisBlock (+linear)": lambda: block(x, None, attrs),
    }
    leaves = [x, A, *ours.parameters(), *contraction.parameters(), *block.parameters()]

    print(f"fdg construction {built_fdg * 1e3:.0f} ms (first in this process), {weight_count(ours)} weights")
    print(f"MACE SymmetricContraction construction {built_mace * 1e3:.0f} ms, {weight_count(contraction)} weights")
    title = (
        f"symmetric contraction {irreps_in} -> {irreps_out}, correlation {args.correlation}, "
        f"{args.species} species, {args.nodes} nodes, per-species weights"
    )
    print(title)
    print(f"  {describe_machine()}")
    base = next(iter(runners))
    print(f"  {base}: first forward+backward {first_call(runners[base], leaves) * 1e3:.0f} ms")
    print_ratios(runners, leaves, args.repeat, args.warmup)


if __name__ == "__main__":
    main()
