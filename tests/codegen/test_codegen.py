"""Generated source: one golden file per diagram, determinism, and the IR after every pass."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from golden_util import check_golden
from module_inputs import random_inputs

import fdg
from fdg import ir, passes
from fdg.api import diagram_names
from fdg.checker.lower import lower
from fdg.frontend.parser import parse
from fdg.ir.verify import IRError, check_ir

ROOT = Path(__file__).resolve().parents[2]
DIAGRAMS = sorted((ROOT / "diagrams").glob("*.fdg"))
GOLDEN = ROOT / "tests" / "golden"


CASES = [(path, name) for path in DIAGRAMS for name in diagram_names(path)]


@pytest.fixture(autouse=True)
def _at_repo_root(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)  # golden sources name the file relative to the repository


@pytest.mark.parametrize(("path", "name"), CASES, ids=[n for _, n in CASES])
def test_generated_source_golden(path: Path, name: str) -> None:
    check_golden(GOLDEN / f"{name}.py", fdg.emit(path.relative_to(ROOT), diagram=name))


@pytest.mark.parametrize(("path", "name"), CASES, ids=[n for _, n in CASES])
def test_ir_dump_golden(path: Path, name: str) -> None:
    check_golden(GOLDEN / f"{name}.ir", ir.dump(fdg.lower_source(path.relative_to(ROOT), diagram=name)))


def test_emit_is_deterministic_across_processes() -> None:
    # sets and dicts of strings iterate in a per-process order: source must not depend on it
    probe = "import fdg, sys; sys.stdout.write(''.join(fdg.emit(p) for p in sys.argv[1:]))"
    files = [str(p.relative_to(ROOT)) for p in DIAGRAMS if len(diagram_names(p)) == 1]
    sources = {
        subprocess.run(
            [sys.executable, "-c", probe, *files],
            capture_output=True,
            text=True,
            check=True,
            env={**os.environ, "PYTHONHASHSEED": seed},
        ).stdout
        for seed in ("1", "2", "3")
    }
    assert len(sources) == 1 and "class NequIPConv(" in sources.pop()


@pytest.mark.parametrize(("path", "name"), CASES, ids=[n for _, n in CASES])
def test_check_ir_after_every_pass(path: Path, name: str) -> None:
    diagram = lower(parse(path.read_text()), name, {}).diagram
    check_ir(diagram)
    before = ir.dump(diagram)
    for _, apply in passes.PASSES:
        result = apply(diagram)
        check_ir(result)
        assert ir.dump(diagram) == before, "a pass mutated its input"
        diagram, before = result, ir.dump(result)


def test_passes_prune_and_fold() -> None:
    diagram = fdg.lower_source("""diagram D() {
        input x : 2x0e
        unused = linear(x) -> 0e
        output y = 0.5 * (4 * x)
    }""")
    ops = [type(diagram.op(n)).__name__ for n in diagram.order()]
    assert ops == ["Input", "Scale", "Output"]
    (scale,) = [diagram.op(n) for n in diagram.order() if isinstance(diagram.op(n), ir.Scale)]
    assert scale.factor == 2.0


def test_verifier_catches_a_broken_graph() -> None:
    diagram = fdg.lower_source("diagram D() { input x : 2x0e\n output y = linear(x) -> 3x0e }")
    graph = diagram.graph.copy()
    graph.nodes["y"]["out"] = ir.Feature(ir.Axis("batch"), fdg.runtime.Irreps("4x0e"))
    with pytest.raises(IRError, match="linear output type"):
        check_ir(ir.Diagram(diagram.name, diagram.params, graph))


def test_names_never_shadow_generated_identifiers() -> None:
    source = fdg.emit("""diagram D() {
        input x : 2x0e + 1o
        t_1 = linear(x) -> 2x0e + 1o
        n = linear(t_1) -> 2x0e + 1o
        output y = couple(n, x) -> 0e [mode = uvw]
    }""")
    compile(source, "<generated>", "exec")  # it is valid Python
    assert "y_n = n.shape[0]" in source


def test_temporaries_never_overwrite_a_value() -> None:
    # the grouped lowering's per-index weights are a temporary `y_w`: here an input holds that name
    text = """diagram S() { input a : 4x1o + 4x2e
        input b : 0e + 1o + 2e
        input z : index batch -> 3
        input y_w : 4x1o + 4x2e + 4x1e
        y = couple(a, b) -> 4x1o + 4x2e + 4x1e [mode = uvu, weights = learned[z]]
        output out = y + y_w }"""
    source = fdg.emit(text, pin={"y": "grouped"})
    assert "y_w_2 = self.y_weight.index_select(0, z)" in source
    dense, grouped = fdg.compile(text, pin={"y": "dense"}).double(), fdg.compile(text, pin={"y": "grouped"}).double()
    grouped.load_state_dict(dense.state_dict(), strict=False)
    inputs = random_inputs(dense, torch.float64)
    torch.testing.assert_close(grouped(**inputs), dense(**inputs), atol=1e-10, rtol=0)


def test_generated_source_passes_the_formatter() -> None:
    # long user names push statements past 120 columns: they are split as `ruff format` splits them
    # (the goldens are checked by `ruff format --check` in `make lint`)
    a, b, z = "the_node_features_of_this_layer", "the_spherical_harmonics_of_each_edge", "the_species_of_every_row"
    weights = f"[mode = uvu, weights = learned[{z}]]"
    text = f"""diagram Long(mul = 4) {{
        input {a} : mul x (0e + 1o + 2e)
        input {b} : 0e + 1o + 2e
        input {z} : index batch -> 3
        products_of_the_features_with_the_harmonics = couple({a}, {b}) -> mul x (0e + 1o + 2e + 1e) {weights}
        output y = linear(products_of_the_features_with_the_harmonics) -> mul x (0e + 1o + 2e)
    }}"""
    for pin in ("dense", "grouped", "fused"):
        source = fdg.emit(text, pin={"products_of_the_features_with_the_harmonics": pin})
        assert max(map(len, source.splitlines())) > 100
        result = subprocess.run(
            [sys.executable, "-m", "ruff", "format", "--line-length", "120", "--diff", "--stdin-filename", "m.py", "-"],
            input=source,
            capture_output=True,
            text=True,
        )
        assert result.returncode == 0, result.stdout


def test_a_long_return_annotation_is_split_as_the_formatter_splits_it() -> None:
    # ten outputs: the signature's tail `) -> tuple[torch.Tensor, ...]:` does not fit on one line
    outputs = "\n".join(f"output o{i} = h * {i + 1}" for i in range(10))
    source = fdg.emit(f"diagram Many() {{ input h : 4x0e\n{outputs} }}")
    assert ") -> tuple[\n" in source
    result = subprocess.run(
        [sys.executable, "-m", "ruff", "format", "--line-length", "120", "--diff", "--stdin-filename", "m.py", "-"],
        input=source,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout


def test_attributes_never_take_a_name_every_module_has() -> None:
    # value `register` would hold its coupling matrix in buffer `register_cg`, which is FdgModule's method
    text = """diagram D() { input a : 4x0e + 4x1o
        input v : 1o
        register = couple(a, sh(v, 2)) -> 4x0e + 4x1o + 4x2e [mode = uvu, weights = learned]
        output t_1 = linear(register) -> 4x0e }"""
    for pin in ("dense", "grouped", "grouped+sparse", "fused"):
        source = fdg.emit(text, pin={"register": pin})
        assert "register_cg_2" in source or pin == "dense"
        module = fdg.compile(text, pin={"register": pin})
        assert module(torch.randn(3, 16), torch.randn(3, 3)).shape == (3, 4)
