"""MACE's symmetric contraction (its product basis) vs fdg's ``power``, side by side in one process.

    make venv-mace                                      # once: .venv-mace with torch 2.13.0, mace-torch, fdg
    .venv-mace/bin/python benchmarks/power.py           # 64x(0e+1o+2e+3o) -> 64x(0e+1o), correlation 3, 4 species
    options: [--nodes 2000] [--mul 64] [--species 4] [--correlation 3] [--repeat 7] [--warmup 2] [--threads N]

mace-torch pins e3nn 0.4.4, which is why it lives in its own environment, away from fdg's tests (e3nn 0.6).
Rows: MACE's ``SymmetricContraction`` (what ``power`` replaces), MACE's ``EquivariantProductBasisBlock`` (the same
plus its linear layer) and, once the compiler supports ``power``, the fdg module.  Until then the script says
"fdg power: not supported yet" and times MACE alone.  It also prints MACE's weight counts: its basis is
over-complete, while fdg's ``power`` has one weight per dimension of the function space (SPEC section 3).
"""

from __future__ import annotations

import argparse
import os
import time
import warnings

# e3nn 0.4.4 torch.load()s its constants with pickled slices, which torch >= 2.6 refuses by default.
os.environ.setdefault("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")

import torch
from e3nn import o3
from harness import Runner, add_timing_arguments, apply_timing_arguments, describe_machine, first_call, print_ratios
from mace.modules.blocks import EquivariantProductBasisBlock
from mace.modules.symmetric_contraction import SymmetricContraction

import fdg
import fdg.api  # imported here so that the construction time below excludes module imports
from fdg.errors import FdgNotSupported

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


def fdg_power(mul: int, correlation: int, species: int) -> torch.nn.Module | None:
    """fdg's ``power`` module, or None (with a message) while the compiler does not generate code for it."""
    try:
        return fdg.compile(POWER_SOURCE, mul=mul, nu=correlation, species=species)
    except FdgNotSupported as exc:
        print(f"fdg power: not supported yet ({str(exc).splitlines()[0]})")
        return None


def to_mul_ir(x: torch.Tensor) -> torch.Tensor:
    """MACE's ``[n, mul, (lmax+1)^2]`` node features in fdg's (e3nn's) ``mul_ir`` layout ``[n, irreps.dim]``."""
    blocks = [x[:, :, l * l : (l + 1) * (l + 1)].reshape(x.shape[0], -1) for l in range(LMAX_IN + 1)]
    return torch.cat(blocks, dim=1)


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
    ours = fdg_power(args.mul, args.correlation, args.species)
    built_fdg = time.perf_counter() - start
    irreps_in, irreps_out = mace_irreps(args.mul)
    start = time.perf_counter()
    contraction = SymmetricContraction(irreps_in, irreps_out, correlation=args.correlation, num_elements=args.species)
    built_mace = time.perf_counter() - start
    block = EquivariantProductBasisBlock(
        irreps_in, irreps_out, correlation=args.correlation, use_sc=False, num_elements=args.species
    )

    x = torch.randn(args.nodes, args.mul, (LMAX_IN + 1) ** 2, requires_grad=True)
    z = torch.randint(0, args.species, (args.nodes,))
    attrs = torch.nn.functional.one_hot(z, args.species).to(x.dtype)
    runners: dict[str, Runner] = {
        "mace SymmetricContraction": lambda: contraction(x, attrs),
        "mace ProductBasisBlock (+linear)": lambda: block(x, None, attrs),
    }
    leaves = [x, *contraction.parameters(), *block.parameters()]

    # ---- fdg power: timed side by side here once `fdg.compile` supports `power` -------------------------------
    # The input is the same numbers in fdg's layout (converted outside the timed call).  Before trusting the row,
    # check that fdg spans MACE's function space: with MACE's weights fixed, least squares over fdg's weights
    # (the output is linear in them) must reproduce MACE's output to rounding on a random batch.
    if ours is not None:
        A = to_mul_ir(x.detach()).requires_grad_()
        runners = {"fdg power": lambda: ours(A, z), **runners}
        leaves += [A, *ours.parameters()]
        print(f"fdg power: construction {built_fdg * 1e3:.0f} ms, {weight_count(ours)} weights")
    # -----------------------------------------------------------------------------------------------------------

    print(f"MACE SymmetricContraction construction: {built_mace * 1e3:.0f} ms")
    small = SymmetricContraction(*mace_irreps(2), correlation=args.correlation, num_elements=2)
    for mul, species, module in ((args.mul, args.species, contraction), (2, 2, small)):
        shape = f"{mul}x(0e+1o+2e+3o) -> {mul}x(0e+1o), correlation {args.correlation}, {species} species"
        print(f"MACE weights, {shape}: {weight_count(module)}")
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
