"""fdg.runtime.spherical_harmonics against e3nn, plus equivariance, parity, normalization, autograd and compile."""

import pytest
import torch
from e3nn import o3

from fdg.runtime import Irreps, rand_matrix, spherical_harmonics


def e3nn_sh(lmax: int, vec: torch.Tensor, normalize: bool = True) -> torch.Tensor:
    return o3.spherical_harmonics(list(range(lmax + 1)), vec, normalize, normalization="component")


@pytest.mark.parametrize("lmax", range(12))
def test_matches_e3nn_float64(lmax: int) -> None:
    torch.manual_seed(lmax)
    vec = torch.randn(200, 3, dtype=torch.float64) * 2
    ours = spherical_harmonics(lmax, vec)
    assert ours.shape == (200, (lmax + 1) ** 2) and ours.dtype == torch.float64 and ours.is_contiguous()
    assert torch.allclose(ours, e3nn_sh(lmax, vec), rtol=0, atol=1e-12)
    # Unnormalized input: each block is the homogeneous polynomial of degree l, of size |x|^l sqrt(2l + 1).
    raw, ref = spherical_harmonics(lmax, vec, normalize=False), e3nn_sh(lmax, vec, normalize=False)
    radius = vec.norm(dim=-1, keepdim=True)
    scale = torch.cat([radius**l * (2 * l + 1) ** 0.5 for l in range(lmax + 1) for _ in range(2 * l + 1)], dim=-1)
    assert ((raw - ref).abs() <= 1e-13 * scale).all()


@pytest.mark.parametrize("lmax", range(7))
def test_matches_e3nn_float32(lmax: int) -> None:
    torch.manual_seed(100 + lmax)
    vec = torch.randn(200, 3)
    ours = spherical_harmonics(lmax, vec)
    assert ours.dtype == torch.float32
    assert torch.allclose(ours, e3nn_sh(lmax, vec), rtol=1e-5, atol=1e-5)


def test_shapes_and_special_inputs() -> None:
    assert spherical_harmonics(2, torch.randn(4, 5, 3)).shape == (4, 5, 9)
    assert spherical_harmonics(3, torch.randn(3)).shape == (16,)
    assert spherical_harmonics(2, torch.randn(0, 3)).shape == (0, 9)
    zero = spherical_harmonics(3, torch.zeros(2, 3, dtype=torch.float64))
    assert torch.equal(zero, e3nn_sh(3, torch.zeros(2, 3, dtype=torch.float64)))  # Y^0 = 1, the rest 0: no NaN
    pole = spherical_harmonics(4, torch.tensor([0.0, 5.0, 0.0], dtype=torch.float64))
    for l in range(5):  # at the pole only the middle component survives, and it is +sqrt(2l + 1)
        expected = torch.zeros(2 * l + 1, dtype=torch.float64)
        expected[l] = (2 * l + 1) ** 0.5
        assert torch.allclose(pole[l * l : (l + 1) ** 2], expected, atol=1e-14)
    with pytest.raises(ValueError, match=r"\[\.\.\., 3\]"):
        spherical_harmonics(2, torch.randn(4, 2))
    with pytest.raises(ValueError, match="lmax"):
        spherical_harmonics(-1, torch.randn(4, 3))


def test_component_normalization() -> None:
    vec = torch.randn(50, 3, dtype=torch.float64)
    sh = spherical_harmonics(6, vec)
    for l in range(7):
        block = sh[:, l * l : (l + 1) ** 2]
        assert torch.allclose(block.pow(2).sum(-1), torch.full((50,), 2.0 * l + 1, dtype=torch.float64))


def test_equivariance_under_rotations_and_inversion() -> None:
    torch.manual_seed(7)
    lmax = 6
    irreps = Irreps.spherical_harmonics(lmax)
    vec = torch.randn(30, 3, dtype=torch.float64)
    for R in (rand_matrix(dtype=torch.float64), -rand_matrix(dtype=torch.float64)):
        D = irreps.D_from_matrix(R)
        # Y(R x) = D(R) Y(x); for -R this includes the parity (-1)^l of Y^l.
        assert torch.allclose(spherical_harmonics(lmax, vec @ R.T), spherical_harmonics(lmax, vec) @ D.T, atol=1e-10)
    parity = torch.cat([torch.full((2 * l + 1,), (-1.0) ** l, dtype=torch.float64) for l in range(lmax + 1)])
    assert torch.allclose(spherical_harmonics(lmax, -vec), spherical_harmonics(lmax, vec) * parity, atol=1e-14)


def test_gradients_match_e3nn_to_second_order() -> None:
    torch.manual_seed(8)
    vec = torch.randn(20, 3, dtype=torch.float64)
    vec[0] = 0.0  # the zero vector: finite gradients, as with e3nn's normalize
    weights = torch.randn(20, 16, dtype=torch.float64)
    results = []
    for fn in (spherical_harmonics, e3nn_sh):
        x = vec.clone().requires_grad_(True)
        (grad,) = torch.autograd.grad((fn(3, x) * weights).sum(), x, create_graph=True)
        (hessian_vector,) = torch.autograd.grad(grad[1:].pow(2).sum(), x, create_graph=True)
        results.append((grad, hessian_vector))
    (grad, second), (grad_ref, second_ref) = results
    assert torch.isfinite(grad).all() and torch.isfinite(second).all()
    assert torch.allclose(grad, grad_ref, rtol=1e-10, atol=1e-10)
    assert torch.allclose(second[1:], second_ref[1:], rtol=1e-9, atol=1e-9)


def test_double_backward_gradcheck() -> None:
    x = torch.randn(4, 3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda v: spherical_harmonics(3, v), (x,))
    assert torch.autograd.gradgradcheck(lambda v: spherical_harmonics(3, v), (x,))


def test_torch_compile_fullgraph() -> None:
    torch._dynamo.reset()

    def f(vec: torch.Tensor) -> torch.Tensor:
        # Two calls in one graph, with different lmax: the constant tables must not clash.
        return spherical_harmonics(3, vec)[..., 4:] * spherical_harmonics(2, 2 * vec).sum(-1, keepdim=True)

    vec = torch.randn(8, 3, dtype=torch.float64, requires_grad=True)
    # aot_eager runs dynamo (no graph breaks allowed) and aot_autograd, without the slow inductor codegen.
    compiled = torch.compile(f, fullgraph=True, backend="aot_eager")
    out = compiled(vec)
    assert torch.allclose(out, f(vec), atol=1e-14)
    (grad,) = torch.autograd.grad(out.sum(), vec)
    (grad_ref,) = torch.autograd.grad(f(vec).sum(), vec)
    assert torch.allclose(grad, grad_ref, atol=1e-12)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu() -> None:
    vec = torch.randn(100, 3, dtype=torch.float64)
    assert torch.allclose(spherical_harmonics(5, vec.cuda()).cpu(), spherical_harmonics(5, vec), atol=1e-13)
    vec32 = vec.float()
    assert torch.allclose(spherical_harmonics(5, vec32.cuda()).cpu(), spherical_harmonics(5, vec32), atol=1e-5)
