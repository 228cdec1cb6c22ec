"""``fuse``: the SPEC's fusion block compiles and runs; equivariance; normalization; every tree spans the same
maps (Jacobian ranks) unless lmax drops irreps; recoupling against sympy's 6j symbols; the report against hand
counts; tree enumeration; torch.compile.  ``test_folding.py`` checks that every evaluation computes the same."""

from __future__ import annotations

import io
import itertools
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from module_inputs import feature_irreps, random_inputs
from sympy.physics.wigner import wigner_6j

import fdg
from fdg.planning.fuse import trees
from fdg.runtime import FdgModule, Irreps, rand_matrix
from fdg.runtime.fusion_paths import FuseSpec, Tree, fuse_layout, tree_leaves
from fdg.runtime.fusion_reference import naive_fuse
from fdg.runtime.fusion_tables import path_tensor, recoupling

ROOT = Path(__file__).resolve().parents[2]


pytestmark = pytest.mark.usefixtures("float64_default")  # every test here runs in float64


def test_spec_fusion_block_compiles_and_runs() -> None:
    torch.set_default_dtype(torch.float32)
    module = fdg.compile(ROOT / "diagrams/fusion.fdg")
    # 0e+1o+2e three times into 0e+1o+2e: 55 paths (the multiplicities of L in l1 x l2 x l3), 16 channels each
    assert sum(p.numel() for p in module.parameters()) == 55 * 16
    inputs = random_inputs(module, dtype=torch.float32)
    y = module(**inputs)
    assert y.shape == (5, 16 * 9) and y.dtype == torch.float32 and torch.isfinite(y).all()
    assert "fuse y: evaluates" in str(module.report)


CASES = {
    "fusion block": ("fusion.fdg", {"mul": 3}),
    "multiplicity one, learned[z]": (
        "diagram M(mul = 3) { input h : mul x (0e + 1o + 2e) over edge\n input v : 1o over edge\n"
        " input w : 0e + 1o + 1e over edge\n input z : index edge -> 3\n"
        " output y = fuse(h, sh(v, 2), w) -> mul x (0e + 0o + 1o + 1e + 2e + 2o) [weights = learned[z]] }",
        {},
    ),
    "four inputs": (
        "diagram Q() { input a : 2x(0e + 1o)\n input b : 2x(1o + 2e)\n input c : 1o\n input d : 2x(0e + 1e)\n"
        " output y = fuse(a, b, c, d) -> 2x0e + 2x1o + 2x1e + 2x2o }",
        {},
    ),
    "external weights": (
        "diagram E() { input a : 2x1o\n input b : 2x(0e + 1o)\n input c : 1o\n input R : weights\n"
        " output y = fuse(a, b, c) -> 2x0e + 2x1e + 2x2e [weights = R] }",
        {},
    ),
    "no weights": (
        "diagram N() { input a : 0e + 1o\n input b : 1o + 2e\n input c : 1o\n"
        " output y = fuse(a, b, c) -> 0e + 1e + 2e [weights = none] }",
        {},
    ),
    "pinned mirrored tree, lmax": (
        "diagram P(mul = 2) { input a : mul x (0e + 1o + 2e)\n input b : mul x (1o + 2e)\n input c : mul x 1e\n"
        " output y = fuse(a, b, c) -> mul x (0e + 1o + 1e + 2o) [tree = ((b, a), c), lmax = 2] }",
        {},
    ),
    "output lmax": (
        "diagram L(mul = 2) { input a : mul x (0e + 1o)\n input b : mul x 1o\n input c : 1o + 2e\n"
        " output y = fuse(a, b, c) -> lmax 2 }",
        {},
    ),
    "one input twice": (
        "diagram T() { input a : 2x(0e + 1o)\n input b : 2x1o\n output y = fuse(a, b, a) -> 2x0e + 2x1e + 2x2o }",
        {},
    ),
}


def _compile(case: str) -> FdgModule:
    source, params = CASES[case]
    program = ROOT / "diagrams" / source if source.endswith(".fdg") else source
    return fdg.compile(program, **params).double()


@pytest.mark.parametrize("case", sorted(CASES))
def test_equivariant_under_rotations_and_inversion(case: str) -> None:
    module = _compile(case)
    inputs = random_inputs(module, generator=3)
    y = module(**inputs)
    assert y.abs().max() > 0.1
    out_irreps = feature_irreps(next(iter(module.outputs.values())))
    assert out_irreps is not None
    for seed, sign in itertools.product(range(2), (1, -1)):
        R = sign * rand_matrix(generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
        moved = {}
        for name, t in inputs.items():
            irreps = feature_irreps(module.inputs[name])
            moved[name] = t @ irreps.D_from_matrix(R).T if irreps is not None else t
        torch.testing.assert_close(module(**moved), y @ out_irreps.D_from_matrix(R).T, atol=1e-10, rtol=1e-10)


@pytest.mark.parametrize("case", ["fusion block", "four inputs"])
def test_outputs_have_unit_variance(case: str) -> None:
    """Unit-variance inputs and weights (the default init) give outputs of second moment ~1 per irrep block."""
    module = _compile(case)
    module.float()
    torch.manual_seed(0)
    ys = []
    for _ in range(100):  # the weights' draw dominates the spread: few paths reach each output irrep
        for p in module.parameters():
            torch.nn.init.normal_(p)
        inputs = {k: torch.randn(200, v.shape[1], dtype=torch.float32) for k, v in random_inputs(module).items()}
        ys.append(module(**inputs).detach())
    y = torch.cat(ys)
    out = feature_irreps(next(iter(module.outputs.values())))
    assert out is not None
    for (mul, ir), block in zip(out, y.split([m * ir.dim for m, ir in out], dim=1), strict=True):
        assert 0.85 < block.pow(2).mean() < 1.15, f"{mul}x{ir}: {block.pow(2).mean():.3f}"


@pytest.mark.parametrize(
    "irreps",
    [
        ("2x0e + 2x1o + 2x2e", "2x0e + 2x1o + 2x2e", "2x0e + 2x1o + 2x2e", "2x0e + 2x1o + 2x2e"),
        ("3x1o + 3x0e + 3x1o", "0e + 2e", "3x1e", "3x1o + 3x1e + 3x1o"),
        ("2x0e + 2x1o", "1o", "2x0e + 2x1o", "0e + 1o", "2x0e + 2x1o + 2x1e + 2x2e"),
    ],
    ids=["fusion block", "repeated irreps, multiplicity one", "four inputs"],
)
def test_matches_a_path_by_path_reference(irreps: tuple[str, ...]) -> None:
    """Against ``fdg.runtime.fusion_reference.naive_fuse``: its own enumeration of the paths (the documented weight
    layout and normalization) and one einsum chain per path with the dense 3j tensors."""
    *ins, out = (Irreps(i) for i in irreps)
    names = "abcd"[: len(ins)]
    decl = "\n".join(f" input {n} : {i}" for n, i in zip(names, ins, strict=True))
    module = fdg.compile(f"diagram R() {{{decl}\n output y = fuse({', '.join(names)}) -> {out} }}").double()
    inputs = list(random_inputs(module, generator=5).values())
    (weight,) = module.parameters()
    mul = max(i[0].mul for i in ins)
    want = naive_fuse(inputs, ins, out, weight.view(-1, mul))
    torch.testing.assert_close(module(*inputs), want, atol=1e-10, rtol=1e-10)


def _jacobian(source: str, samples: int = 12) -> torch.Tensor:
    """Outputs over a fixed batch as a linear function of the weights: ``[samples * out dim, weights]``."""
    module = fdg.compile(source).double()
    (weight,) = module.parameters()
    inputs = random_inputs(module, generator=7, sizes={"batch": samples})

    def f(w: torch.Tensor) -> torch.Tensor:
        return torch.func.functional_call(module, {"y_weight": w}, kwargs=inputs).reshape(-1)

    return torch.func.jacrev(f)(weight.detach())


def _rank(j: torch.Tensor) -> int:
    s = torch.linalg.svdvals(j)
    return int((s > 1e-9 * s[0]).sum())


def _fuse(names: str, irreps: str, out: str, options: str) -> str:
    inputs = "\n".join(f" input {n} : {irreps}" for n in names)
    return f"diagram J() {{{inputs}\n output y = fuse({', '.join(names)}) -> {out} [{options}] }}"


@pytest.mark.parametrize(
    ("names", "irreps", "out"), [("abc", "0e + 1o + 2e", "0e + 1o + 2e"), ("abcd", "0e + 1o", "0e + 1o + 1e")]
)
def test_every_tree_spans_the_same_maps(names: str, irreps: str, out: str) -> None:
    """For every tree the Jacobian with respect to the weights has full rank, the weight count, which is the
    multiplicity of the outputs in the inputs' product and so the same for every tree; stacking the Jacobians of
    all trees does not raise the rank: they span one space (6j / 9j recoupling)."""
    found = list(trees.all_trees(list(range(len(names)))))
    assert len(found) == trees.count_trees(len(names))
    jacobians = [_jacobian(_fuse(names, irreps, out, f"tree = {trees.spell(t, list(names))}")) for t in found]
    weights = {j.shape[1] for j in jacobians}
    assert len(weights) == 1, "the weight count does not depend on the tree"
    count = weights.pop()
    assert all(_rank(j) == count for j in jacobians)
    assert _rank(torch.cat(jacobians, dim=1)) == count


def test_lmax_dropping_irreps_changes_the_span() -> None:
    names, irreps, out = "abc", "0e + 1o + 2e", "0e + 1o + 2e"
    full = _rank(_jacobian(_fuse(names, irreps, out, "tree = ((a, b), c)")))
    jacobians = [_jacobian(_fuse(names, irreps, out, f"tree = {t}, lmax = 1")) for t in ("((a, b), c)", "(a, (b, c))")]
    ranks = [_rank(j) for j in jacobians]
    assert ranks == [j.shape[1] for j in jacobians] and max(ranks) < full
    assert max(ranks) < _rank(torch.cat(jacobians, dim=1)) <= full  # the two capped trees span different spaces
    report = str(fdg.report(_fuse(names, irreps, out, "tree = (a, (b, c)), lmax = 1")))
    assert "lmax = 1 drops irreps 2o, 2e, 3o, 3e, 4e at internal nodes: trees no longer span the same space" in report


@pytest.mark.parametrize(("other", "swapped"), [((0, (1, 2)), False), (((0, 2), 1), True)])
def test_recoupling_is_the_6j_symbol(other: trees.Tree, swapped: bool) -> None:
    """The overlap of the real-basis chains ``((j1 j2) j12, j3) J`` and ``(j1, (j2 j3) j23) J`` is
    ``(-1)^(j1+j2+j3+J) {j1 j2 j12; j3 J j23}`` (Frobenius-normalized 3j tensors: the sqrt((2j12+1)(2j23+1)) of the
    unitary recoupling coefficient cancels); with ``((j1 j3) j13, j2)`` it is ``(-1)^(j2+j3+j12+j13)
    {j2 j1 j12; j3 J j13}``.  The real basis's phases cancel along both trees, so these are sympy's values."""
    checked = 0
    for j1, j2, j3 in itertools.product(range(3), repeat=3):
        irs = [f"{j}{'eo'[j % 2]}" for j in (j1, j2, j3)]
        for J in range(j1 + j2 + j3 + 1):
            spec = FuseSpec(tuple(irs), f"{J}{'eo'[(j1 + j2 + j3) % 2]}", ((0, 1), 2))
            target = spec._replace(tree=other)
            if not fuse_layout(spec).paths:
                continue
            R = recoupling(spec, other).dense()
            for q, a in enumerate(fuse_layout(spec).paths):
                for p, b in enumerate(fuse_layout(target).paths):
                    (j12,), (jx,) = a.degrees, b.degrees
                    if swapped:
                        six = (-1) ** (j2 + j3 + j12 + jx) * float(wigner_6j(j2, j1, j12, j3, J, jx))
                    else:
                        six = (-1) ** (j1 + j2 + j3 + J) * float(wigner_6j(j1, j2, j12, j3, J, jx))
                    overlap = float((path_tensor(spec, a) * path_tensor(target, b)).sum()) / a.alpha / b.alpha
                    assert abs(overlap - six) < 1e-12, (j1, j2, j3, J, j12, jx)
                    # R maps weights: path q = sum_p R[q, p] path p, so R[q, p] = <q, p> / <p, p>
                    norm = float(path_tensor(target, b).pow(2).sum())
                    assert abs(R[q, p] - a.alpha * b.alpha * six / norm) < 1e-12
                    checked += 1
    assert checked > 200


def test_report_rows_by_hand() -> None:
    """fuse(x, y) -> 2x0e of two 2x1o: one path (the dot product), two channels, 10 rows."""
    r = fdg.report(
        "diagram T() { input x : 2x1o\n input y : 2x1o\n output z = fuse(x, y) -> 2x0e }", sizes={"batch": 10}
    )
    rows = {s.what: s for s in r.steps}
    # channel layout: a copy of 2 x 3 numbers, read and written: 2 * 4 bytes * 6 per row
    assert rows["channels of input 0 -> [2, 3]"].bytes == 48
    # learned weights folded once per call into a per-channel table [2, 9 x 1]: the 3 non-zeros of the 1o x 1o -> 0e
    # 3j tensor, each a product and an addition per channel: 2 * 3 * 2 = 12 FLOPs, batch independent
    fold = rows["fold weights [3 entries] -> [2, 9]"]
    assert (fold.axis, fold.flops) == ("", 12)
    # split product: x (3 components) times the table viewed [3, 3 x 1] (2 * 3 * 3 FLOPs), then y's 3 components
    # contracted with that (2 * 3): 24 per channel, 48 per row
    product = rows["(x, y): outer @ per-channel table [3x3x1], last operand after"]
    assert (product.lowering, product.flops) == ("mm", 48)
    assert r.plan.flops == 12 + 10 * 48
    # baseline: the path's outer product (9) and dense CG (2 * 9) per channel, then the weights (2 per output)
    assert [s.flops * 10 for s in r.baseline_steps] == [2 * 27 * 10, 2 * 2 * 10]
    text = str(r)
    assert "fuse z: evaluates tree (x, y) (the cheapest of every tree and the folded tensor;" in text
    assert "1 paths, weights on the paths of (x, y)" in text


def canonical(tree: Tree) -> Tree:
    """``tree`` with every node's children ordered by their least leaf (mirror images are the same tree)."""
    if isinstance(tree, int):
        return tree
    a, b = canonical(tree[0]), canonical(tree[1])
    return (a, b) if min(tree_leaves(a)) < min(tree_leaves(b)) else (b, a)


def test_tree_enumeration() -> None:
    for n in range(2, 7):
        found = list(trees.all_trees(list(range(n))))
        assert len(found) == len(set(found)) == trees.count_trees(n)
        assert all(canonical(t) == t for t in found)
        assert found[0] == trees.left_to_right(n)
    assert canonical(((2, 1), 0)) == (0, (1, 2))
    # many inputs: the left-to-right tree and a greedy one, which couples the multiplicity-one inputs first
    irreps = [Irreps(s) for s in ("8x0e+8x1o", "0e+1o+2e", "8x0e+8x1o", "0e+1o", "1o", "1o")]
    found, everything = trees.candidates(irreps, [8, 1, 8, 1, 1, 1], None)
    assert not everything and found[0] == trees.left_to_right(6)
    greedy = found[1]
    assert (4, 5) in list(_subtrees(greedy)) and 0 in tree_leaves(greedy)


def _subtrees(tree: trees.Tree) -> Iterator[trees.Tree]:
    yield tree
    if not isinstance(tree, int):
        yield from _subtrees(tree[0])
        yield from _subtrees(tree[1])


def test_six_inputs_compile_with_the_greedy_tree() -> None:
    source = (
        "diagram S() { input a : 2x(0e + 1o)\n input b : 0e + 1o\n input c : 1o\n input d : 2x1o\n input e : 1o\n"
        " input f : 0e\n output y = fuse(a, b, c, d, e, f) -> 2x(0e + 1o) }"
    )
    module = fdg.compile(source).double()
    assert "the cheapest of the left-to-right tree, a greedy tree and the folded tensor" in str(module.report)
    assert module(**random_inputs(module)).shape == (6, 8)


def test_inlined_calls_save_and_load() -> None:
    """A diagram calling one with a fuse twice: two vertices, their own weights and tables; torch.save round trip."""
    source = (
        "diagram F(mul = 2) { input a : mul x (0e + 1o)\n input b : mul x 1o\n input c : 1o\n"
        " output y = fuse(a, b, c) -> mul x (0e + 1e) [tree = (a, (b, c))] }\n"
        "diagram G(mul = 2) { input a : mul x (0e + 1o)\n input b : mul x 1o\n input c : 1o\n"
        " output z = F(mul = mul)(a, b, c) - F(mul = mul)(a, b, c) }"
    )
    module = fdg.compile(source, diagram="G").double()
    assert sum(p.numel() for p in module.parameters()) == 2 * 2 * 2  # 2 paths, 2 channels, 2 calls
    inputs = random_inputs(module)
    y = module(**inputs)
    assert y.abs().max() > 0.1  # two independent weight sets do not cancel
    buffer = io.BytesIO()
    torch.save(module, buffer)
    buffer.seek(0)
    torch.testing.assert_close(torch.load(buffer, weights_only=False)(**inputs), y, atol=0, rtol=0)


def test_report_json_holds_the_choice() -> None:
    found = json.loads(fdg.report(ROOT / "diagrams/fusion.fdg").to_json())["fusions"]["y"]
    assert found["evaluates"] in found["estimated_seconds"] and found["paths"] == 55
    assert found["weights_tree"] == "((a, b), c)" and found["all_trees_priced"] and found["lmax"] is None


@pytest.mark.parametrize("backend", ["eager", "aot_eager"])
@pytest.mark.parametrize("case", ["multiplicity one, learned[z]", "fusion block"])
def test_torch_compile_fullgraph(backend: str, case: str) -> None:
    module = _compile(case)
    compiled = torch.compile(module, fullgraph=True, backend=backend, dynamic=True)
    for seed in (0, 1):
        inputs = random_inputs(module, generator=seed)
        torch.testing.assert_close(compiled(**inputs), module(**inputs), atol=1e-12, rtol=1e-12)
