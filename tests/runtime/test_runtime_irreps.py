"""fdg.runtime.irreps against e3nn's o3.Irrep / o3.Irreps: parsing, printing, arithmetic and representations."""

import copy
import pickle

import pytest
import torch
from e3nn import o3
from hypothesis import given, settings
from hypothesis import strategies as st

from fdg.runtime import Irrep, Irreps, MulIr, rand_matrix

STRINGS = [
    "",
    "  ",
    "0e",
    "1o",
    "1e",
    "0o",
    "16x0e + 8x1o",
    "0e+1o",
    "2x1e",
    "1y + 2y + 3y + 0y",
    "0x1o",
    "3x0o + 2x2e + 1x0e + 5x1o + 0x3e",
    "  4 x 1o  ",
    "100x5e+1o+1o+7x1e",
    "1e + 1e + 0e + 1e",
    "2o + 1e + 0e + 1e",
    "32x0e+32x1o+32x2e+32x3o",
    "011o + 2x02e",
]

INVALID = [
    "1x",
    "x1o",
    "1o+",
    "+",
    "+1o",
    "1.5x0e",
    "-1x0e",
    "1z",
    "1e2",
    "abc",
    "2x-1o",
    "1 o",
    "1O",
    "2X1o",
    "1_0x0e",
]


@pytest.mark.parametrize("text", STRINGS)
def test_parse_and_properties_match_e3nn(text: str) -> None:
    ours, ref = Irreps(text), o3.Irreps(text)
    assert ours == ref and tuple(ours) == tuple(ref)
    assert str(ours) == str(ref)
    assert Irreps(str(ours)) == ours
    assert (ours.dim, ours.num_irreps, ours.ls) == (ref.dim, ref.num_irreps, ref.ls)
    assert ours.slices() == ref.slices()
    assert ours.simplify() == ref.simplify() and str(ours.simplify()) == str(ref.simplify())
    assert ours.remove_zero_multiplicities() == ref.remove_zero_multiplicities()
    assert ours.regroup() == ref.regroup()
    ours_sorted, ref_sorted = ours.sort(), ref.sort()
    assert ours_sorted.irreps == ref_sorted.irreps
    assert (ours_sorted.p, ours_sorted.inv) == (tuple(ref_sorted.p), tuple(ref_sorted.inv))
    if ours.num_irreps:
        assert ours.lmax == ref.lmax
    else:
        with pytest.raises(ValueError):
            _ = ours.lmax
    for ir in ["0e", "0o", "1o", "1e", "2e", "5e"]:
        assert ours.count(ir) == ref.count(ir)
        assert (ir in ours) == (ir in ref)
    assert all(isinstance(mul_ir, MulIr) and isinstance(mul_ir.ir, Irrep) for mul_ir in ours)
    assert isinstance(ours[1:], Irreps) and ours[1:] == ref[1:]


@pytest.mark.parametrize("text", INVALID)
def test_invalid_strings_raise_value_error(text: str) -> None:
    with pytest.raises(ValueError, match="invalid irreps"):
        Irreps(text)


def test_error_messages_are_specific() -> None:
    with pytest.raises(ValueError, match="empty term"):
        Irreps("1o + ")
    with pytest.raises(ValueError, match="cannot read '3q'"):
        Irreps("1o + 3q")
    with pytest.raises(ValueError, match="invalid irrep '1x1o'"):
        Irrep("1x1o")


def test_irrep_construction_and_printing() -> None:
    assert Irrep(1, -1) == Irrep("1o") == Irrep((1, -1)) == Irrep(Irrep("1o")) == o3.Irrep("1o")
    assert Irrep(o3.Irrep("2e")) == Irrep(2, 1)
    assert str(Irrep("3y")) == "3o" and str(Irrep("2y")) == "2e" and str(Irrep(" 4e ")) == "4e"
    assert repr(Irrep("1o")) == "Irrep('1o')" and repr(Irreps("2x1o")) == "Irreps('2x1o')"
    assert (Irrep("1o").l, Irrep("1o").p, Irrep("1o").dim) == (1, -1, 3)
    assert Irrep("0e").is_scalar() and not Irrep("0o").is_scalar()
    assert hash(Irrep("1o")) == hash(Irrep(1, -1))
    for bad in [(-1, 1), (1, 0), (1, 2), (1.0, 1), (True, 1)]:
        with pytest.raises(ValueError):
            Irrep(*bad)
    for bad_text in ["", "1", "o", "-1o", "1x1o"]:
        with pytest.raises(ValueError):
            Irrep(bad_text)


def test_irrep_ordering_matches_e3nn() -> None:
    names = ["2e", "1e", "0o", "1o", "0e", "2o", "3o"]
    assert [str(ir) for ir in sorted(Irrep(n) for n in names)] == [str(ir) for ir in sorted(o3.Irrep(n) for n in names)]
    assert Irrep("1o") < Irrep("1e") and Irrep("0e") < Irrep("1o")


@pytest.mark.parametrize(("a", "b"), [("0e", "0e"), ("1o", "1o"), ("1o", "2e"), ("3e", "1o"), ("2o", "2o")])
def test_irrep_product_matches_e3nn(a: str, b: str) -> None:
    assert list(Irrep(a) * Irrep(b)) == list(o3.Irrep(a) * o3.Irrep(b))
    assert list(Irrep(a) * b) == list(o3.Irrep(a) * o3.Irrep(b))


def test_construction_from_lists_and_e3nn_objects() -> None:
    expected = Irreps("2x1o+1x0e")
    assert Irreps([(2, (1, -1)), (1, "0e")]) == expected
    assert Irreps([(2, Irrep("1o")), (1, Irrep("0e"))]) == expected
    assert Irreps([MulIr(2, Irrep("1o")), "0e"]) == expected
    assert Irreps([[2, "1o"], (0, 1)]) == expected
    assert Irreps(o3.Irreps("2x1o+1x0e")) == expected
    assert Irreps(Irrep("1o")) == Irreps("1x1o") and Irreps(None) == Irreps("") == Irreps([])
    assert Irreps(expected) is expected
    for bad in [[(-1, "0e")], [(1.5, "0e")], [(1, "0q")], [3], ["1o+1e"]]:
        with pytest.raises(ValueError):
            Irreps(bad)


def test_arithmetic_matches_e3nn() -> None:
    a, b = "16x0e + 8x1o", "2x1o + 0e"
    assert Irreps(a) + Irreps(b) == o3.Irreps(a) + o3.Irreps(b)
    assert Irreps(a) + b == o3.Irreps(a) + b
    assert "0e" + Irreps("1o") == Irreps("0e+1o")
    assert Irrep("0e") + Irrep("1o") == Irreps("0e+1o") and isinstance(Irrep("0e") + "1o", Irreps)
    assert 3 * Irrep("1e") == Irreps("3x1e") == 3 * o3.Irrep("1e")
    assert Irreps("0e+1o") * 2 == o3.Irreps("0e+1o") * 2 and isinstance(2 * Irreps("0e"), Irreps)
    assert Irreps("2x0e") != Irreps("0e+0e")
    assert Irreps("1o") == Irreps("1x1o")


@pytest.mark.parametrize("p", [1, -1])
def test_spherical_harmonics_irreps(p: int) -> None:
    for lmax in range(5):
        assert Irreps.spherical_harmonics(lmax, p) == o3.Irreps.spherical_harmonics(lmax, p)


def test_empty_irreps() -> None:
    empty = Irreps("")
    assert (empty.dim, empty.num_irreps, empty.slices(), str(empty)) == (0, 0, [], "")
    with pytest.raises(ValueError, match="no irreps"):
        _ = empty.lmax
    assert empty.D_from_angles(0.0, 0.0, 0.0).shape == (0, 0)


IRREPS_LISTS = st.lists(
    st.tuples(st.integers(0, 40), st.integers(0, 8), st.sampled_from(["e", "o", "y"])), min_size=0, max_size=8
)


@settings(max_examples=60, deadline=None)
@given(IRREPS_LISTS, st.booleans())
def test_random_strings_round_trip(terms: list[tuple[int, int, str]], spaced: bool) -> None:
    sep, times = (" + ", " x ") if spaced else ("+", "x")
    text = sep.join(f"{mul}{times}{l}{p}" if mul != 1 else f"{l}{p}" for mul, l, p in terms)
    ours, ref = Irreps(text), o3.Irreps(text)
    assert ours == ref and str(ours) == str(ref)
    assert Irreps(str(ours)) == ours
    assert ours.dim == ref.dim and ours.slices() == ref.slices()
    assert ours.simplify() == ref.simplify()
    assert ours.sort().inv == tuple(ref.sort().inv)


def _representation_cases() -> list[str]:
    return ["0e", "1o", "1e + 2x0o", "2x0e + 1o + 2e + 3o", "4x1o + 2x2o + 0e"]


@pytest.mark.usefixtures("float64_default")
@pytest.mark.parametrize("text", _representation_cases())
def test_D_from_matrix_matches_e3nn_for_rotations_and_inversion(text: str) -> None:
    torch.manual_seed(0)
    R = rand_matrix(4, dtype=torch.float64)
    ours, ref = Irreps(text), o3.Irreps(text)
    for Q in (R, -R, -torch.eye(3, dtype=torch.float64)):
        assert torch.allclose(ours.D_from_matrix(Q), ref.D_from_matrix(Q), atol=1e-12)
    # Parity: the inversion is +1 on even irreps and -1 on odd ones.
    inversion = ours.D_from_matrix(-torch.eye(3, dtype=torch.float64))
    signs = torch.cat([torch.full((mul_ir.dim,), float(mul_ir.ir.p), dtype=torch.float64) for mul_ir in ours])
    assert torch.allclose(inversion, torch.diag(signs), atol=1e-14)


@pytest.mark.usefixtures("float64_default")
def test_D_from_angles_matches_e3nn_with_parity_power() -> None:
    torch.manual_seed(1)
    alpha, beta, gamma = (torch.rand(5, dtype=torch.float64) * 6 for _ in range(3))
    k = torch.tensor([0, 1, 2, 3, 1])
    ours, ref = Irreps("0o + 2x1o + 2e"), o3.Irreps("0o + 2x1o + 2e")
    assert torch.allclose(
        ours.D_from_angles(alpha, beta, gamma, k), ref.D_from_angles(alpha, beta, gamma, k), atol=1e-12
    )
    assert torch.allclose(ours.D_from_angles(alpha, beta, gamma, 1), ref.D_from_angles(alpha, beta, gamma, k[1]))
    single = Irrep("2o").D_from_angles(alpha, beta, gamma, k)
    assert torch.allclose(single, o3.Irrep("2o").D_from_angles(alpha, beta, gamma, k), atol=1e-12)


def test_D_is_a_representation() -> None:
    torch.manual_seed(2)
    irreps = Irreps("0e + 1o + 2e + 3o + 1e")
    R1, R2 = rand_matrix(2, dtype=torch.float64)
    product = irreps.D_from_matrix(R1) @ irreps.D_from_matrix(-R2)
    assert torch.allclose(irreps.D_from_matrix(-(R1 @ R2)), product, atol=1e-10)


def test_randn_shapes() -> None:
    irreps = Irreps("2x1o + 0e")
    assert irreps.randn(5, -1).shape == (5, 7)
    assert irreps.randn(-1, 3).shape == (7, 3)
    assert irreps.randn(2, 3, dtype=torch.float64).shape == (2, 3, 7)
    assert irreps.randn(-1, dtype=torch.float64).dtype == torch.float64
    assert irreps.randn(4, requires_grad=True).requires_grad


def test_immutable() -> None:
    irreps = Irreps("2x1o")
    with pytest.raises(TypeError):
        irreps[0] = MulIr(1, Irrep("0e"))  # type: ignore[index]
    with pytest.raises(AttributeError):
        irreps[0].mul = 3  # type: ignore[misc]
    assert {Irreps("1o"): 1}[Irreps("1x1o")] == 1
    with pytest.raises(AttributeError):
        irreps.extra = 1  # type: ignore[attr-defined]
    with pytest.raises(ValueError, match="cannot interpret"):
        Irreps(5)  # type: ignore[arg-type]


def test_pickle_and_copy() -> None:
    irreps = Irreps("16x0e + 8x1o + 0x2e")
    for clone in (pickle.loads(pickle.dumps(irreps)), copy.deepcopy(irreps), copy.copy(irreps)):
        assert clone == irreps and isinstance(clone, Irreps) and isinstance(clone[1].ir, Irrep)
    assert pickle.loads(pickle.dumps(Irrep("3o"))) == Irrep("3o")
