"""fdg's run-time ``SymmetricPower`` (both strategies) vs MACE's ``SymmetricContraction``, side by side in one process.

    make venv-mace                                          # once: .venv-mace with torch 2.13.0, mace-torch, fdg
    .venv-mace/bin/python benchmarks/power_runtime.py       # 64x(0e+1o+2e+3o) -> 64x(0e+1o), nu 3, 4 species
    options: [--nodes 2000] [--mul 64] [--species 4] [--correlation 3] [--repeat 7] [--warmup 2] [--threads N]

``benchmarks/power.py`` times the compiled diagram once the compiler emits ``power``; this script times the run-time
module that the generated code calls, so the evaluation strategy can be measured on its own: ``folded`` (weights
folded into the basis per channel and species) and ``basis`` (one shared basis product, weights after).
Before timing, it checks (small, float64) that fdg spans exactly MACE's function space. It also prints absolute
medians, alongside the interleaved ratios.
"""

from __future__ import annotations

import os
import statistics
import time
import warnings

os.environ.setdefault("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")  # e3nn 0.4.4 loads pickled constants

import torch
from e3nn import o3
from harness import Runner, describe_machine, interleaved, print_ratios
from mace.modules.symmetric_contraction import SymmetricContraction
from power import power_arguments

from fdg.runtime import SymmetricPower

warnings.filterwarnings("ignore", message="The TorchScript type system")


def check_same_space_as_mace(correlation: int, species: int = 2, mul: int = 2, n: int = 80) -> None:
    """Both outputs are linear in their weights: least squares each way, in float64, must fit to rounding.

    MACE's output (random weights) is reached by fdg's weights, and fdg's output by MACE's: the same function space,
    with fdg's weight count equal to its dimension.
    """
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    irreps_in, irreps_out = f"{mul}x0e+{mul}x1o+{mul}x2e+{mul}x3o", f"{mul}x0e+{mul}x1o"
    ours = SymmetricPower(irreps_in, correlation, irreps_out, species=species)
    theirs = SymmetricContraction(o3.Irreps(irreps_in), o3.Irreps(irreps_out), correlation, num_elements=species)
    x = torch.randn(n, mul, 16)
    a = torch.cat([x[:, :, l * l : (l + 1) ** 2].reshape(n, -1) for l in range(4)], 1)
    z = torch.randint(0, species, (n,))
    attrs = torch.nn.functional.one_hot(z, species).double()
    with torch.no_grad():
        numel = species * ours.weight_numel
        design = torch.stack([ours(a, e.view(species, -1), z).flatten() for e in torch.eye(numel)], 1)
        target = theirs(x, attrs).flatten()
        params = list(theirs.parameters())
        flat = torch.cat([p.flatten() for p in params])
        mace_design = []
        for e in torch.eye(len(flat)):
            torch.nn.utils.vector_to_parameters(e, params)
            mace_design.append(theirs(x, attrs).flatten())
        torch.nn.utils.vector_to_parameters(flat, params)
        mine = ours(a, torch.randn(species, ours.weight_numel), z).flatten()
    for name, matrix, y in (("MACE by fdg", design, target), ("fdg by MACE", torch.stack(mace_design, 1), mine)):
        solution = torch.linalg.lstsq(matrix, y[:, None], driver="gelsd").solution  # SVD: MACE's columns are dependent
        residual = (matrix @ solution - y[:, None]).norm() / y.norm()
        print(f"  same function space: {name}: relative residual {residual:.1e}")
        assert residual < 1e-8, name
    rank = torch.linalg.matrix_rank(design)
    print(f"  fdg weights {numel} = rank of its outputs {int(rank)}; MACE weights {len(flat)}")
    torch.set_default_dtype(previous)


def main() -> None:
    args = power_arguments(__doc__)
    mul, n, species = args.mul, args.nodes, args.species
    irreps_in, irreps_out = f"{mul}x0e+{mul}x1o+{mul}x2e+{mul}x3o", f"{mul}x0e+{mul}x1o"

    start = time.perf_counter()
    powers = {}
    for folded in (True, False):
        power = SymmetricPower(irreps_in, args.correlation, irreps_out, species=species)
        power.set_strategy(folded)
        powers["folded" if folded else "basis"] = power
    built = time.perf_counter() - start
    contraction = SymmetricContraction(
        o3.Irreps(irreps_in), o3.Irreps(irreps_out), correlation=args.correlation, num_elements=species
    )
    x = torch.randn(n, mul, 16, requires_grad=True)  # MACE's layout [n, mul, (lmax+1)^2]
    a = torch.cat([x.detach()[:, :, l * l : (l + 1) ** 2].reshape(n, -1) for l in range(4)], 1).requires_grad_()
    z = torch.randint(0, species, (n,))
    attrs = torch.nn.functional.one_hot(z, species).to(x.dtype)
    weight = torch.randn(species, powers["folded"].weight_numel, requires_grad=True)
    default = "folded" if SymmetricPower(irreps_in, args.correlation, irreps_out, species=species).folded else "basis"
    runners: dict[str, Runner] = {
        f"fdg SymmetricPower {name}{' (default)' if name == default else ''}": (lambda p=p: p(a, weight, z))
        for name, p in powers.items()
    }
    runners["mace SymmetricContraction"] = lambda: contraction(x, attrs)
    leaves = [x, a, weight, *contraction.parameters()]

    check_same_space_as_mace(args.correlation)
    print(f"power {irreps_in} -> {irreps_out}, nu {args.correlation}, {species} species, {n} nodes")
    print(f"  {describe_machine()}")
    print(f"  fdg construction (both strategies, tables cached after the first): {built * 1e3:.0f} ms")
    mace_weights = sum(p.numel() for p in contraction.parameters())
    print(f"  weights: fdg {species * powers['folded'].weight_numel}, MACE {mace_weights}")
    print_ratios(runners, leaves, args.repeat, args.warmup)
    times = interleaved(runners, leaves, args.repeat, args.warmup, backward=True)
    print("  forward+backward medians (s): " + ", ".join(f"{k} {statistics.median(v):.3f}" for k, v in times.items()))


if __name__ == "__main__":
    main()
