"""The benchmark peers compute fdg's function, and the harness times what it says it times.

A benchmark that compares different functions is worthless, so the equalities the benchmarks assert before timing
are tested here in float64 to 1e-10, at small sizes.  The e3nn peers always run; the cuEquivariance peers need
the optional ``bench`` extra and are skipped without it.
"""

from __future__ import annotations

import harness
import peers
import pytest
import torch
from e3nn import o3

needs_cue = pytest.mark.skipif(not peers.has_cue(), reason="cuequivariance_torch not installed (extra 'bench')")


pytestmark = pytest.mark.usefixtures("float64_default")  # every test here runs in float64


@pytest.mark.parametrize("lmax", [1, 2, 3])
def test_conv_e3nn_equals_fdg(lmax: int) -> None:
    case = peers.conv_case(mul=3, lmax=lmax, edges=17, cue=False)
    assert list(case.runners) == ["fdg", "e3nn"]
    peers.check_case(case, rtol=1e-10)


def test_node_e3nn_equals_fdg() -> None:
    case = peers.node_case(mul=5, nodes=13, cue=False)
    peers.check_case(case, rtol=1e-10)


def test_tfn_e3nn_equals_fdg() -> None:
    from tfn import tfn_case

    peers.check_case(tfn_case(mul=3, edges=60), rtol=1e-10)


@pytest.mark.parametrize(("mul", "lmax"), [(3, 2), (2, 3)])
def test_edge_fusion_e3nn_two_products_equal_fdg(mul: int, lmax: int) -> None:
    from edge_fusion import edge_fusion_case

    case = edge_fusion_case(mul=mul, lmax=lmax, edges=40)
    assert list(case.bounds) == ["fdg couple (bound)"]
    peers.check_case(case, rtol=1e-10)


def test_the_node_roofline_has_the_weight_contractions_flops() -> None:
    """128x(0e+1o+2e) x sh(2): 35 (path, output component) pairs of 128 x 128 multiply-adds per node."""
    irreps = o3.Irreps("128x0e+128x1o+128x2e")
    name, a, w = peers.same_gemm(o3.FullyConnectedTensorProduct(irreps, o3.Irreps.spherical_harmonics(2), irreps), 1000)
    assert 2 * a.shape[0] * a.shape[1] * w.shape[1] == pytest.approx(2 * 1000 * 35 * 128 * 128, rel=1e-3)
    assert name.startswith(f"torch.mm [{a.shape[0]}x512] @ [512x128]")


@needs_cue
@pytest.mark.parametrize(("mul", "lmax"), [(4, 2), (2, 3)])
def test_conv_cue_equals_fdg(mul: int, lmax: int) -> None:
    case = peers.conv_case(mul=mul, lmax=lmax, edges=17)
    assert "cue naive" in case.runners
    peers.check_case(case, rtol=1e-10)


@needs_cue
@pytest.mark.parametrize("lmax", [1, 2])
def test_node_cue_equals_fdg(lmax: int) -> None:
    case = peers.node_case(mul=6, lmax=lmax, nodes=13)
    assert "cue naive" in case.runners
    peers.check_case(case, rtol=1e-10)


@needs_cue
def test_cue_weight_map_is_a_scaled_permutation() -> None:
    """Every e3nn weight lands in exactly one cuEquivariance slot, scaled by 1/sqrt(paths into its irrep)."""
    from cue_peers import CueChannelWise

    irreps_x, irreps_out = o3.Irreps("2x0e+2x1o+2x2e"), o3.Irreps("2x0e+2x1o+2x1e+2x2o+2x2e")
    instructions = [
        (i1, i2, io, "uvu", True)
        for i1, (_, ir1) in enumerate(irreps_x)
        for i2, (_, ir2) in enumerate(o3.Irreps.spherical_harmonics(2))
        for io, (_, ir_out) in enumerate(irreps_out)
        if ir_out in ir1 * ir2
    ]
    peer = CueChannelWise(irreps_x, 2, irreps_out, instructions)
    assert sorted(peer.weight_index.tolist()) == list(range(2 * len(instructions)))
    into = [sum(1 for ins in instructions if ins[2] == io) for io in range(len(irreps_out))]
    assert set(peer.weight_scale.tolist()) == {1 / n**0.5 for n in into}


def test_check_case_catches_a_different_function() -> None:
    """The pre-timing check fails for a peer off by one part in a million (so it can fail at all)."""
    case = peers.conv_case(mul=2, lmax=2, edges=5, cue=False)
    right = case.runners["e3nn"]
    case.runners["e3nn"] = lambda: right() * (1 + 1e-6)
    with pytest.raises(AssertionError, match="e3nn"):
        peers.check_case(case, rtol=1e-10)


def test_interleaved_runs_round_robin_and_clears_gradients() -> None:
    calls: list[str] = []
    leaf = torch.ones(3, requires_grad=True)

    def runner(name: str) -> harness.Runner:
        def run() -> torch.Tensor:
            assert leaf.grad is None, "gradients of the previous call were not cleared"
            calls.append(name)
            return leaf * 2

        return run

    times = harness.interleaved({"a": runner("a"), "b": runner("b")}, [leaf], repeat=3, warmup=1, backward=True)
    assert calls == ["a", "b"] * 4
    assert {name: len(t) for name, t in times.items()} == {"a": 3, "b": 3}
    assert all(t > 0 for ts in times.values() for t in ts)


def test_ratios_are_medians_over_the_first_runner(capsys: pytest.CaptureFixture[str]) -> None:
    times = {"base": [1.0, 2.0, 3.0], "peer": [3.0, 2.0, 9.0]}
    # median 3 / median 2; per-round ratios 3, 1, 3
    assert harness._ratio_line("peer", times, "base").split() == ["1.50", "(1.00-3.00)"]
    x = torch.randn(20, 20, requires_grad=True)
    harness.print_ratios({"one": lambda: x @ x, "two": lambda: x @ x @ x}, [x], repeat=2, warmup=1)
    out = capsys.readouterr().out
    assert "time / one time" in out and "above 1: one is faster" in out
    rows = {line.split()[0]: line.split()[1:] for line in out.splitlines() if line.strip().startswith(("one", "two"))}
    assert rows["one"][0] == "1.00" and rows["one"][2] == "1.00" and len(rows["two"]) == 4
