"""fdg.runtime.wigner: exact CG against sympy, 3j / D / generators / rotations against e3nn, and invariance."""

import doctest
import itertools
from fractions import Fraction

import pytest
import sympy
import torch
from e3nn import o3
from sympy.physics.wigner import clebsch_gordan

import fdg.runtime
import fdg.runtime.irreps
import fdg.runtime.sh
import fdg.runtime.wigner
from fdg.runtime import (
    angles_to_matrix,
    matrix_to_angles,
    rand_angles,
    rand_matrix,
    so3_generators,
    wigner_3j,
    wigner_D,
)
from fdg.runtime.wigner import Surd, change_basis_real_to_complex, su2_clebsch_gordan, wigner_3j_exact


def triples(lmax: int) -> list[tuple[int, int, int]]:
    return [
        (l1, l2, l3) for l1, l2, l3 in itertools.product(range(lmax + 1), repeat=3) if abs(l1 - l2) <= l3 <= l1 + l2
    ]


def _as_sympy(value: Surd) -> sympy.Expr:
    return value.sign * sympy.sqrt(sympy.Rational(value.square.numerator, value.square.denominator))


@pytest.mark.parametrize(("l1", "l2"), list(itertools.product(range(5), repeat=2)))
def test_su2_clebsch_gordan_is_exactly_sympys(l1: int, l2: int) -> None:
    for l3 in range(abs(l1 - l2), l1 + l2 + 1):
        for m1, m2 in itertools.product(range(-l1, l1 + 1), range(-l2, l2 + 1)):
            m3 = m1 + m2
            if abs(m3) > l3:
                continue
            ours = su2_clebsch_gordan(l1, m1, l2, m2, l3, m3)
            ref = clebsch_gordan(l1, l2, l3, m1, m2, m3)
            assert sympy.Rational(ours.square.numerator, ours.square.denominator) == ref**2
            assert ours.sign == (1 if ref > 0 else -1 if ref < 0 else 0)


def test_su2_clebsch_gordan_half_integers_and_selection_rules() -> None:
    half = Fraction(1, 2)
    cases = [(half, half, half, -half, 1, 0), (Fraction(3, 2), half, 1, -1, Fraction(5, 2), -half)]
    for j1, m1, j2, m2, j3, m3 in cases:
        ref = clebsch_gordan(*(sympy.nsimplify(str(x)) for x in (j1, j2, j3, m1, m2, m3)))
        assert _as_sympy(su2_clebsch_gordan(j1, m1, j2, m2, j3, m3)) == ref
    assert su2_clebsch_gordan(1, 1, 1, 0, 1, 0).sign == 0  # m3 != m1 + m2
    assert su2_clebsch_gordan(1, 0, 1, 0, 3, 0).sign == 0  # triangle
    assert su2_clebsch_gordan(1, 0, 1, 0, 1, 0).sign == 0  # a genuine zero of the Racah sum
    for bad in [(1, 2, 1, 0, 1, 2), (1, half, 1, 0, 1, half), (-1, 0, 1, 0, 1, 0), (Fraction(1, 3), 0, 1, 0, 1, 0)]:
        with pytest.raises(ValueError):
            su2_clebsch_gordan(*bad)


@pytest.mark.usefixtures("float64_default")
def test_wigner_3j_matches_e3nn_including_signs() -> None:
    for l1, l2, l3 in triples(5):
        ours = wigner_3j(l1, l2, l3, dtype=torch.float64)
        ref = o3.wigner_3j(l1, l2, l3, dtype=torch.float64)
        assert ours.shape == ref.shape
        assert torch.allclose(ours, ref, rtol=0, atol=1e-12), (l1, l2, l3)


def test_wigner_3j_exact_is_normalized_and_sparse() -> None:
    for l1, l2, l3 in triples(4):
        entries = wigner_3j_exact(l1, l2, l3)
        assert sum(v.square for v in entries.values()) == 1
        table = wigner_3j(l1, l2, l3, dtype=torch.float64)
        assert torch.count_nonzero(table) == len(entries)
        # Parity under swapping the first two factors: (-1)^(l1 + l2 + l3).
        swapped = wigner_3j(l2, l1, l3, dtype=torch.float64).transpose(0, 1)
        assert torch.allclose(swapped, (-1) ** (l1 + l2 + l3) * table, atol=1e-15)


def test_wigner_3j_dtype_device_copy_and_errors() -> None:
    assert wigner_3j(1, 1, 2).dtype == torch.get_default_dtype()
    assert wigner_3j(1, 1, 2, dtype=torch.float64, device="cpu").dtype == torch.float64
    table = wigner_3j(1, 2, 3, dtype=torch.float64)
    table.zero_()
    assert wigner_3j(1, 2, 3, dtype=torch.float64).abs().sum() > 0  # the cached table was not touched
    for bad in [(1, 1, 3), (0, 2, 1), (-1, 0, 1), (1.0, 1, 1), (True, 1, 1)]:
        with pytest.raises(ValueError):
            wigner_3j(*bad)  # type: ignore[arg-type]


def test_wigner_3j_is_invariant() -> None:
    torch.manual_seed(0)
    alpha, beta, gamma = rand_angles(dtype=torch.float64)
    D = [wigner_D(l, alpha, beta, gamma) for l in range(5)]
    for l1, l2, l3 in triples(4):
        C = wigner_3j(l1, l2, l3, dtype=torch.float64)
        D1, D2, D3 = D[l1], D[l2], D[l3]
        # As a bilinear map y_k = C_ijk x_i x'_j it is equivariant: rotating both inputs rotates the output.
        rotated_inputs = torch.einsum("ia,jb,ijk->abk", D1, D2, C)
        assert torch.allclose(rotated_inputs, torch.einsum("kc,abc->abk", D3, C), atol=1e-10)
        # Equivalently, C is an invariant tensor of l1 ⊗ l2 ⊗ l3.
        assert torch.allclose(torch.einsum("ia,jb,kc,abc->ijk", D1, D2, D3, C), C, atol=1e-10)


@pytest.mark.usefixtures("float64_default")
def test_basis_change_and_generators_match_e3nn() -> None:
    from e3nn.o3._wigner import change_basis_real_to_complex as e3nn_change_basis

    for l in range(7):
        assert torch.allclose(change_basis_real_to_complex(l), e3nn_change_basis(l, dtype=torch.float64), atol=1e-15)
        G = so3_generators(l, dtype=torch.float64)
        assert torch.allclose(G, o3.so3_generators(l).to(torch.float64), atol=1e-13)
        assert torch.allclose(G, -G.transpose(-1, -2))
        # [G_x, G_y] = G_z: the generators close into so(3) with the orientation of angles_to_matrix.
        assert torch.allclose(G[0] @ G[1] - G[1] @ G[0], G[2], atol=1e-12)


@pytest.mark.usefixtures("float64_default")
def test_wigner_D_matches_e3nn() -> None:
    torch.manual_seed(1)
    alpha, beta, gamma = rand_angles(3, 2, dtype=torch.float64)
    alpha = alpha * 3 - 7  # angles outside [0, 2 pi) too
    for l in range(7):
        ours = wigner_D(l, alpha, beta, gamma)
        assert ours.shape == (3, 2, 2 * l + 1, 2 * l + 1)
        assert torch.allclose(ours, o3.wigner_D(l, alpha, beta, gamma), atol=1e-12)


def test_wigner_D_properties() -> None:
    torch.manual_seed(2)
    a, b, c = rand_angles(4, dtype=torch.float64)
    assert torch.allclose(wigner_D(1, a, b, c), angles_to_matrix(a, b, c), atol=1e-14)
    R1, R2 = rand_matrix(2, dtype=torch.float64)
    for l in range(6):
        D = wigner_D(l, a, b, c)
        assert torch.allclose(D @ D.transpose(-1, -2), torch.eye(2 * l + 1, dtype=torch.float64), atol=1e-12)
        product = wigner_D(l, *matrix_to_angles(R1 @ R2))
        assert torch.allclose(
            product, wigner_D(l, *matrix_to_angles(R1)) @ wigner_D(l, *matrix_to_angles(R2)), atol=1e-10
        )
        G = so3_generators(l, dtype=torch.float64)
        t = torch.tensor(0.7, dtype=torch.float64)
        zero = torch.zeros((), dtype=torch.float64)
        assert torch.allclose(torch.linalg.matrix_exp(t * G[1]), wigner_D(l, t, zero, zero), atol=1e-12)
        assert torch.allclose(torch.linalg.matrix_exp(t * G[0]), wigner_D(l, zero, t, zero), atol=1e-12)
    # Python floats and broadcasting.
    assert wigner_D(2, 0.1, torch.zeros(5), 0.3).shape == (5, 5, 5)
    assert wigner_D(2, 0.1, 0.2, 0.3).dtype == torch.get_default_dtype()
    assert wigner_D(1, *(torch.zeros(2, dtype=torch.float32) for _ in range(3))).dtype == torch.float32
    assert wigner_D(1, 0.5, torch.zeros(2, dtype=torch.float64), 1).dtype == torch.float64  # numbers follow tensors
    assert angles_to_matrix(0.5, torch.zeros(2, dtype=torch.float64), 1).dtype == torch.float64


def test_wigner_D_is_twice_differentiable() -> None:
    angles = [torch.tensor(v, dtype=torch.float64, requires_grad=True) for v in (0.3, 1.1, -0.4)]
    assert torch.autograd.gradgradcheck(lambda a, b, c: wigner_D(2, a, b, c), angles)


@pytest.mark.usefixtures("float64_default")
def test_rotations_match_e3nn() -> None:
    torch.manual_seed(3)
    a, b, c = rand_angles(50, dtype=torch.float64)
    R = angles_to_matrix(a, b, c)
    assert torch.allclose(R, o3.angles_to_matrix(a, b, c), atol=1e-15)
    for ours, ref in zip(matrix_to_angles(R), o3.matrix_to_angles(R), strict=True):
        assert torch.allclose(ours, ref, atol=1e-12)
    assert torch.allclose(angles_to_matrix(*matrix_to_angles(R)), R, atol=1e-12)


def test_random_rotations() -> None:
    generator = torch.Generator().manual_seed(4)
    R = rand_matrix(1000, dtype=torch.float64, generator=generator)
    assert R.shape == (1000, 3, 3)
    assert torch.allclose(R @ R.transpose(-1, -2), torch.eye(3, dtype=torch.float64).expand(1000, 3, 3), atol=1e-12)
    assert torch.allclose(torch.linalg.det(R), torch.ones(1000, dtype=torch.float64))
    # Haar measure: the image of any fixed unit vector is uniform on the sphere, so its mean is near 0.
    assert R[:, :, 0].mean(0).abs().max() < 0.1
    assert all(t.shape == (2, 3) and t.dtype == torch.float32 for t in rand_angles(2, 3, dtype=torch.float32))
    assert rand_matrix().shape == (3, 3)


@pytest.mark.parametrize("module", [fdg.runtime, fdg.runtime.irreps, fdg.runtime.wigner, fdg.runtime.sh])
def test_docstring_examples(module: object) -> None:
    result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)  # type: ignore[arg-type]
    assert result.failed == 0 and result.attempted > 0
