"""Properties of compiled modules: equivariance, autograd, torch.compile, saving, dtypes, devices."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
import torch
from module_inputs import feature_irreps, random_inputs

import fdg
from fdg.api import diagram_names
from fdg.runtime import FdgModule, rand_matrix, wigner_3j

ROOT = Path(__file__).resolve().parents[1]
DIAGRAMS = sorted((ROOT / "diagrams").glob("*.fdg"))
# every diagram of every file: a family may need several (its layers on either side of a nonlinearity)
CASES = [(path, name) for path in DIAGRAMS for name in diagram_names(path)]


pytestmark = pytest.mark.usefixtures("float64_default")  # every test here runs in float64


def small(path: Path, name: str) -> FdgModule:
    """The diagram with small multiplicities (every seed diagram takes `mul`)."""
    return fdg.compile(path, diagram=name, mul=3)


def outputs(module: FdgModule, inputs: dict[str, torch.Tensor]) -> tuple[torch.Tensor, ...]:
    result = module(**inputs)
    return result if isinstance(result, tuple) else (result,)


@pytest.mark.parametrize(("path", "name"), CASES, ids=[name for _, name in CASES])
@pytest.mark.parametrize("transform", ["rotation", "inversion", "rotoinversion"])
def test_equivariance(path: Path, name: str, transform: str) -> None:
    module = small(path, name)
    inputs = random_inputs(module)
    R = rand_matrix(generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    if transform == "inversion":
        R = -torch.eye(3)
    elif transform == "rotoinversion":
        R = -R
    moved = {}
    for name, x in inputs.items():
        irreps = feature_irreps(module.inputs[name])
        moved[name] = x if irreps is None else x @ irreps.D_from_matrix(R).T
    for (name, description), y, y_moved in zip(
        module.outputs.items(), outputs(module, inputs), outputs(module, moved), strict=True
    ):
        irreps = feature_irreps(description)
        assert irreps is not None, name
        torch.testing.assert_close(y_moved, y @ irreps.D_from_matrix(R).T, atol=1e-10, rtol=1e-10)


def test_double_backward_forces_and_force_training() -> None:
    module = fdg.compile(ROOT / "diagrams/nequip.fdg", mul=2)
    inputs = random_inputs(module)
    vec = inputs["vec"].requires_grad_()
    energy = module(**inputs).pow(2).sum()
    (forces,) = torch.autograd.grad(energy, vec, create_graph=True)
    forces.pow(2).sum().backward()
    (weight,) = module.parameters()
    assert weight.grad is not None and weight.grad.abs().sum() > 0


def test_gradgradcheck() -> None:
    module = fdg.compile(ROOT / "diagrams/nequip.fdg", mul=1)
    inputs = random_inputs(module, sizes={"node": 2, "edge": 3})  # numerical Hessians: keep it tiny
    h, vec, R = (inputs[k].requires_grad_() for k in ("h", "vec", "R"))

    def f(h: torch.Tensor, vec: torch.Tensor, R: torch.Tensor) -> torch.Tensor:
        return module(h=h, vec=vec, R=R, src=inputs["src"], dst=inputs["dst"])

    assert torch.autograd.gradgradcheck(f, (h, vec, R))


@pytest.mark.parametrize("backend", ["eager", "aot_eager"])
def test_torch_compile_fullgraph(backend: str) -> None:
    module = fdg.compile(ROOT / "diagrams/nequip.fdg", mul=2)
    compiled = torch.compile(module, fullgraph=True, backend=backend, dynamic=True)
    for seed in (0, 1):  # two calls: the second must reuse the graph
        inputs = random_inputs(module, generator=seed)
        torch.testing.assert_close(compiled(**inputs), module(**inputs), atol=1e-12, rtol=1e-12)


def test_save_load_and_state_dict() -> None:
    module = fdg.compile(ROOT / "diagrams/species.fdg", mul=2)
    inputs = random_inputs(module)
    buffer = io.BytesIO()
    torch.save(module, buffer)
    buffer.seek(0)
    loaded = torch.load(buffer, weights_only=False)
    torch.testing.assert_close(loaded(**inputs), module(**inputs))
    again = fdg.compile(ROOT / "diagrams/species.fdg", mul=2)
    again.load_state_dict(module.state_dict())
    torch.testing.assert_close(again(**inputs), module(**inputs))
    assert any(k.startswith("cg_") for k in module.state_dict())


def test_float32_module_moved_to_float64_has_exact_cg() -> None:
    torch.set_default_dtype(torch.float32)
    module = fdg.compile(ROOT / "diagrams/tfn.fdg", mul=2).double()
    torch.set_default_dtype(torch.float64)
    for name, buffer in module.named_buffers():
        l1, l2, l3 = (int(x) for x in name.split("_")[1:])
        assert buffer.dtype == torch.float64
        assert torch.equal(buffer, wigner_3j(l1, l2, l3, dtype=torch.float64))


def test_several_outputs_return_a_tuple_in_declaration_order() -> None:
    module = fdg.compile("""diagram Two() {
        input x : 2x0e + 1o
        output b = x * 2
        output a = linear(x) -> 0e
    }""")
    assert list(module.outputs) == ["b", "a"]
    x = torch.randn(4, 5)
    b, a = module(x)
    torch.testing.assert_close(b, 2 * x)
    assert a.shape == (4, 1)


def test_empty_batch() -> None:
    module = fdg.compile(ROOT / "diagrams/nequip.fdg", mul=2)
    inputs = random_inputs(module)
    inputs.update(vec=inputs["vec"][:0], R=inputs["R"][:0], src=inputs["src"][:0], dst=inputs["dst"][:0])
    out = module(**inputs)
    assert out.shape == (inputs["h"].shape[0], inputs["h"].shape[1]) and torch.all(out == 0)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device here")
def test_cuda_matches_cpu() -> None:
    module = fdg.compile(ROOT / "diagrams/nequip.fdg", mul=4)
    inputs = random_inputs(module)
    expected = module(**inputs)
    gpu = module.to("cuda")
    got = gpu(**{k: v.cuda() for k, v in inputs.items()})
    torch.testing.assert_close(got.cpu(), expected, atol=1e-10, rtol=1e-10)


def test_construction_reuses_the_compiled_class() -> None:
    a = fdg.compile(ROOT / "diagrams/nequip.fdg", mul=4)
    b = fdg.compile(ROOT / "diagrams/nequip.fdg", mul=4)
    assert type(a) is type(b) and a is not b
    assert not torch.equal(next(a.parameters()), next(b.parameters()))  # fresh weights per instance


MESSAGE = """diagram Message(mul = 3) {
    input h : mul x (0e + 1o + 2e) over node
    input src : index edge -> node
    input dst : index edge -> node
    input vec : 1o over edge
    input R : weights over edge
    output y = sum(couple(h[src], sh(vec, 2)) -> mul x (0e + 1o + 2e) [mode = uvu, weights = R], by = dst)
}"""


def _derivatives(module: torch.nn.Module, inputs: dict[str, torch.Tensor]) -> list[torch.Tensor]:
    """The output and its first and second derivatives with respect to every floating input."""
    leaves = {k: v.clone().requires_grad_() for k, v in inputs.items() if v.is_floating_point()}
    out = module(**{**inputs, **leaves})
    outs = out if isinstance(out, tuple) else (out,)
    first = torch.autograd.grad(sum(o.square().sum() for o in outs), list(leaves.values()), create_graph=True)
    second = torch.autograd.grad(sum(g.sum() for g in first), list(leaves.values()))
    return [*outs, *first, *second]


EDGE_FUSION = """diagram EdgeFusion(mul = 3) {
    input h : mul x (0e + 1o + 2e) over node
    input src : index edge -> node
    input dst : index edge -> node
    input vec : 1o over edge
    input z : index edge -> 2
    input R : weights over edge
    output y = sum(fuse(h[src], h[dst], sh(vec, 2)) -> mul x (0e + 1o + 2e) [weights = R], by = dst)
    output t = fuse(h[src], h[dst], sh(vec, 2)) -> mul x (0e + 1o) [weights = learned[z]]
}"""


def test_the_fuse_root_on_the_kernel_equals_its_torch_form(monkeypatch: pytest.MonkeyPatch) -> None:
    """A fuse with per-row weights (an input, learned[z]) whose root couples with the harmonics runs its root on the
    native kernel; against the torch products and weigh_paths it replaces, to second derivatives (float64)."""
    assert fdg.emit(EDGE_FUSION).count("fdg.runtime.channelwise(") == 2
    module = fdg.compile(EDGE_FUSION)
    inputs = random_inputs(module)
    kernel = _derivatives(module, inputs)
    monkeypatch.setattr(fdg.runtime, "channelwise_available", lambda x: False)
    for a, b in zip(kernel, _derivatives(module, inputs), strict=True):
        torch.testing.assert_close(a, b, atol=1e-12, rtol=1e-12)


def test_gather_and_scatter_fused_into_the_kernel_equal_the_separate_steps(monkeypatch: pytest.MonkeyPatch) -> None:
    """The kernel call reading h through src and summing by dst, against the fallback's index_select, coupling in
    slices and index_add, to second derivatives (float64)."""
    module = fdg.compile(MESSAGE)
    assert "src, dst, h.shape[0]" in fdg.emit(MESSAGE)  # the kernel's call takes the indices
    inputs = random_inputs(module)
    inputs["dst"][-3:] = 0  # repeated targets; the last node has no edge into it

    fused = _derivatives(module, inputs)
    monkeypatch.setattr(fdg.runtime, "channelwise_available", lambda x: False)
    separate = _derivatives(module, inputs)
    for a, b in zip(fused, separate, strict=True):
        torch.testing.assert_close(a, b, atol=1e-12, rtol=1e-12)
