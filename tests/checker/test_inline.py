"""Diagram calls and ``use``: an inlined call computes what the callee compiled alone computes.

Each numerical test builds the caller and a reference (the same network written out by hand, or
the callee compiled on its own), gives both the same weights, and compares outputs in float64.
The catalog of call and ``use`` errors is in ``tests/errors/check/call_*`` and ``tests/errors/use/``.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import torch
from golden_util import check_golden
from module_inputs import feature_irreps, random_inputs

import fdg
from fdg import api, ir
from fdg.cli import main
from fdg.errors import FdgTypeError
from fdg.ir.verify import check_ir
from fdg.runtime import FdgModule, rand_matrix

ROOT = Path(__file__).resolve().parents[2]

CONV = """
diagram Conv(mul = 4, lmax = 2) {
    input  h   : mul x (0e + 1o + 2e) over node
    input  vec : 1o over edge
    input  R   : weights over edge
    input  src : index edge -> node
    input  dst : index edge -> node
    Y   = sh(vec, lmax)
    m   = couple(h[src], Y) -> mul x (0e + 1o + 2e) [mode = uvu, weights = R]
    agg = sum(m, by = dst) * 0.1
    output out = linear(agg) -> mul x (0e + 1o + 2e)
}
"""

STACK = (
    CONV
    + """
diagram Stack(mul = 3) {
    input  x : mul x (0e + 1o + 2e) over atom
    input  r : 1o over pair
    input  W : weights over pair
    input  i : index pair -> atom
    input  j : index pair -> atom
    a = Conv(mul = mul)(x, r, W, i, j)
    output y = Conv(mul = mul)(a, r, W, j, i) + 0.5 * a
}
"""
)

# Stack written out by hand: the names of the two linear vertices are those inlining gives them
MANUAL = """
diagram Manual(mul = 3) {
    input  x : mul x (0e + 1o + 2e) over atom
    input  r : 1o over pair
    input  W : weights over pair
    input  i : index pair -> atom
    input  j : index pair -> atom
    a = linear(sum(couple(x[i], sh(r, 2)) -> mul x (0e + 1o + 2e) [mode = uvu, weights = W], by = j) * 0.1)
        -> mul x (0e + 1o + 2e)
    y_out = linear(sum(couple(a[j], sh(r, 2)) -> mul x (0e + 1o + 2e) [mode = uvu, weights = W], by = i) * 0.1)
        -> mul x (0e + 1o + 2e)
    output y = y_out + 0.5 * a
}
"""

SIZES = {"atom": 5, "pair": 17}


pytestmark = pytest.mark.usefixtures("float64_default")  # every test here runs in float64


def same_weights(source: FdgModule, target: FdgModule, rename: dict[str, str] | None = None) -> None:
    """Give ``target`` the learned weights of ``source`` (parameter ``k`` of ``source`` is ``rename[k]``)."""
    params = {(rename or {}).get(k, k): v for k, v in source.named_parameters()}
    assert sorted(params) == sorted(k for k, _ in target.named_parameters())
    with torch.no_grad():
        for name, p in target.named_parameters():
            p.copy_(torch.randn_like(p) if name not in params else params[name])


def assert_same_outputs(a: FdgModule, b: FdgModule, sizes: dict[str, int] | None = None) -> None:
    assert a.inputs == b.inputs and a.weight_numel == b.weight_numel
    inputs = random_inputs(a, sizes=sizes or SIZES)
    left, right = a(**inputs), b(**inputs)
    left, right = (left, right) if isinstance(left, tuple) else ((left,), (right,))
    for x, y in zip(left, right, strict=True):
        assert x.abs().max() > 1e-3, "a vanishing output compares nothing"
        torch.testing.assert_close(x, y, atol=1e-12, rtol=1e-12)


def test_calls_equal_the_diagram_written_out_by_hand() -> None:
    stack, manual = fdg.compile(STACK, "Stack"), fdg.compile(MANUAL)
    same_weights(stack, manual)
    assert_same_outputs(stack, manual)


def test_each_call_site_has_its_own_weights_and_readable_names() -> None:
    stack = fdg.compile(STACK, "Stack")
    assert [name for name, _ in stack.named_parameters()] == ["a_weight", "y_out_weight"]
    lowered = fdg.lower_source(STACK, "Stack")
    check_ir(lowered)
    assert {"a_Y", "a_m", "a_agg", "a", "y_Y", "y_m", "y_agg", "y_out", "y"} <= set(lowered.graph)
    # both convolutions read the caller's W: its numel is fixed by the inlined vertices
    couples = [op for _, op in lowered.graph.nodes(data="op") if isinstance(op, ir.Couple)]
    assert [op.weights.source for op in couples] == ["W", "W"]
    assert couples[0].weights.numel == couples[1].weights.numel
    assert stack.weight_numel == {"W": couples[0].weights.numel}


def test_an_inlined_module_is_equivariant() -> None:
    module = fdg.compile(STACK, "Stack")
    inputs = random_inputs(module, sizes=SIZES)
    generator = torch.Generator().manual_seed(3)
    for R in (rand_matrix(generator=generator, dtype=torch.float64), -torch.eye(3, dtype=torch.float64)):
        moved = {}
        for name, x in inputs.items():
            irreps = feature_irreps(module.inputs[name])
            moved[name] = x if irreps is None else x @ irreps.D_from_matrix(R).T
        irreps = feature_irreps(module.outputs["y"])
        assert irreps is not None
        expected = module(**inputs) @ irreps.D_from_matrix(R).T
        torch.testing.assert_close(module(**moved), expected, atol=1e-10, rtol=1e-10)


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_a_used_diagram_equals_the_diagram_compiled_alone(tmp_path: Path) -> None:
    write(tmp_path, "lib/conv.fdg", CONV)
    main_file = write(
        tmp_path,
        "models/model.fdg",
        'use "../lib/conv.fdg"\n\n'
        "diagram Model() {\n"
        "    input h : 3x0e + 3x1o + 3x2e over node\n    input v : 1o over edge\n    input R : weights over edge\n"
        "    input s : index edge -> node\n    input d : index edge -> node\n"
        "    output y = Conv(mul = 3)(h, v, R, s, d)\n}\n",
    )
    model, alone = fdg.compile(main_file), fdg.compile(tmp_path / "lib/conv.fdg", mul=3)
    same_weights(model, alone, {"y_weight": "out_weight"})
    sizes = {"node": 4, "edge": 9}
    inputs = random_inputs(alone, sizes=sizes)
    torch.testing.assert_close(model(h=inputs["h"], v=inputs["vec"], R=inputs["R"], s=inputs["src"], d=inputs["dst"]),
                               alone(**inputs), atol=1e-12, rtol=1e-12)  # fmt: skip


def test_use_in_source_text_is_relative_to_the_current_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(tmp_path, "conv.fdg", CONV)
    monkeypatch.chdir(tmp_path)
    text = 'use "conv.fdg"\n' + STACK.replace(CONV, "")
    stack, manual = fdg.compile(text, "Stack"), fdg.compile(MANUAL)
    same_weights(stack, manual)
    assert_same_outputs(stack, manual)


def test_uses_are_not_transitive_and_a_shared_file_is_no_cycle(tmp_path: Path) -> None:
    write(tmp_path, "base.fdg", "diagram Lin(mul = 2) { input h : mul x 1o\n output y = linear(h) -> mul x 1o }\n")
    write(tmp_path, "left.fdg", 'use "base.fdg"\ndiagram L() { input h : 2x1o\n output y = Lin()(h) }\n')
    write(tmp_path, "right.fdg", 'use "base.fdg"\ndiagram R() { input h : 2x1o\n output y = Lin()(h) }\n')
    top = write(
        tmp_path,
        "top.fdg",
        'use "left.fdg"\nuse "right.fdg"\nuse "left.fdg"\n'
        "diagram Top() { input h : 2x1o\n a = L()(h)\n output y = R()(a) }\n"
        "diagram Hidden() { input h : 2x1o\n output y = Lin()(h) }\n",
    )
    top_module = fdg.compile(top, "Top")
    # nested calls prefix twice: Top's `a` holds L's `y`, which is Lin's `y`
    assert [n for n, _ in top_module.named_parameters()] == ["a_weight", "y_weight"]
    lin = fdg.compile(tmp_path / "base.fdg")
    with pytest.raises(FdgTypeError, match="unknown diagram 'Lin'"):
        fdg.compile(top, "Hidden")  # top.fdg does not use base.fdg itself
    x = torch.randn(3, 6)
    with torch.no_grad():
        expected = lin(lin(x))
        lin_weight = lin.get_parameter("y_weight")
        for p in top_module.parameters():
            p.copy_(lin_weight)
    torch.testing.assert_close(top_module(x), expected, atol=1e-12, rtol=1e-12)


def test_selecting_outputs_of_a_diagram_with_several() -> None:
    text = """
    diagram Split(mul = 2) {
        input  h : mul x (0e + 1o) over node
        output scalars = linear(h) -> mul x 0e
        output vectors = linear(h) -> mul x 1o
    }
    diagram Pick() {
        input  h : 2x0e + 2x1o over node
        output s = Split()(h)[0]
        output v = 2 * Split()(h)[1]
    }
    """
    pick, split = fdg.compile(text, "Pick"), fdg.compile(text, "Split")
    assert [n for n, _ in pick.named_parameters()] == ["s_weight", "v_vectors_weight"]
    with torch.no_grad():
        pick.get_parameter("s_weight").copy_(split.get_parameter("scalars_weight"))
        pick.get_parameter("v_vectors_weight").copy_(split.get_parameter("vectors_weight"))
    h = torch.randn(5, 8)
    s, v = pick(h)
    scalars, vectors = split(h)
    torch.testing.assert_close(s, scalars, atol=1e-12, rtol=1e-12)
    torch.testing.assert_close(v, 2 * vectors, atol=1e-12, rtol=1e-12)


def test_per_index_weights_bind_to_the_callers_index() -> None:
    text = """
    diagram PerElement(mul = 2, species = 3) {
        input  h : mul x (0e + 1o) over node
        input  z : index node -> species
        output out = linear(h) -> mul x (0e + 1o) [weights = learned[z]]
    }
    diagram Model() {
        input  x    : 2x0e + 2x1o over atom
        input  kind : index atom -> 3
        output out = PerElement()(x, kind)
    }
    """
    model, alone = fdg.compile(text, "Model"), fdg.compile(text, "PerElement")
    linear = next(op for _, op in fdg.lower_source(text, "Model").graph.nodes(data="op") if isinstance(op, ir.Linear))
    assert linear.weights.source == "kind"
    same_weights(model, alone)
    x, kind = torch.randn(4, 8), torch.tensor([2, 0, 1, 2])
    torch.testing.assert_close(model(x, kind), alone(x, kind), atol=1e-12, rtol=1e-12)


def test_warnings_inside_a_callee_carry_the_call() -> None:
    text = """
    diagram Lin(mul = 2) {
        input  h : mul x 1o
        input  unused : mul x 0e
        output y = linear(h) -> mul x 1o
    }
    diagram Model() {
        input  a : 2x1o
        input  b : 2x0e
        output y = Lin()(a, b)
    }
    """
    with pytest.warns(fdg.FdgWarning) as caught:
        fdg.compile(text, "Model")
    messages = [str(w.message) for w in caught]
    assert any("input 'unused' is never used" in m and "note: in Lin, called here" in m for m in messages)
    assert any("input 'b' is never used" in m for m in messages)


def test_editing_a_used_file_compiles_afresh(tmp_path: Path) -> None:
    write(tmp_path, "lib.fdg", "diagram Scale() { input h : 1o\n output y = 2 * h }\n")
    top = write(tmp_path, "top.fdg", 'use "lib.fdg"\ndiagram Top() { input h : 1o\n output y = Scale()(h) }\n')
    x = torch.randn(4, 3)
    torch.testing.assert_close(fdg.compile(top)(x), 2 * x)
    write(tmp_path, "lib.fdg", "diagram Scale() { input h : 1o\n output y = 3 * h }\n")
    torch.testing.assert_close(fdg.compile(top)(x), 3 * x)


def test_emit_with_calls_is_deterministic() -> None:
    first = fdg.emit(STACK, "Stack")
    api._build.cache_clear()
    assert fdg.emit(STACK, "Stack") == first


def test_cli_reports_errors_in_used_files_with_their_notes(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(ROOT)
    file = Path("tests/errors/use/syntax_error_in_used_file.fdg")
    assert main(["check", str(file)]) == 1
    err = capsys.readouterr().err
    check_golden(file.with_suffix(".expected"), err)
    assert "note: in tests/errors/use/lib/bad_syntax.fdg, used here" in err


def test_the_language_reference_example_compiles(monkeypatch: pytest.MonkeyPatch) -> None:
    text = (ROOT / "docs/language.md").read_text()
    example = text[text.index('```\nuse "nequip.fdg"') + 4 :]
    example = example[: example.index("```")]
    monkeypatch.chdir(ROOT / "diagrams")  # source text: `use` is relative to the current directory
    module = fdg.compile(example, mul=2)
    assert [n for n, _ in module.named_parameters()] == ["a_weight", "out_out_weight"]
    assert set(module.inputs) == {"h", "vec", "R", "src", "dst"}


def test_calls_are_bounded_in_depth_and_in_size() -> None:
    # 60 nested calls would end in a RecursionError; a diagram calling another twice per level doubles per level
    deep = ["diagram C0() { input x : 0e\n output y = 2 * x }"]
    deep += [f"diagram C{k}() {{ input x : 0e\n output y = C{k - 1}()(x) }}" for k in range(1, 60)]
    with pytest.raises(FdgTypeError, match="diagram calls nested more than 50 deep"):
        fdg.check("\n".join(deep))
    double = ["diagram D0() { input x : 0e\n output y = 2 * x }"]
    double += [
        f"diagram D{k}() {{ input x : 0e\n a = D{k - 1}()(x)\n output y = D{k - 1}()(a) }}" for k in range(1, 16)
    ]
    start = time.perf_counter()
    with pytest.raises(FdgTypeError, match="grows the diagram past 20000 vertices"):
        fdg.check("\n".join(double))
    assert time.perf_counter() - start < 60  # generous: each callee is lowered once per level (was minutes)
