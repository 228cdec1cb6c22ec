"""`fdg draw`: valid, deterministic, readable pictures; the API and the command line."""

from __future__ import annotations

import itertools
import struct
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
from matplotlib import patches
from matplotlib.backends.backend_agg import FigureCanvasAgg
from svg_util import svg_texts

import fdg
from fdg import ir
from fdg.api import diagram_names
from fdg.cli import main
from fdg.drawing import figure
from fdg.drawing.looks import short_irreps
from fdg.drawing.paint import panel
from fdg.runtime import Irreps

ROOT = Path(__file__).resolve().parents[2]
DIAGRAMS = sorted((ROOT / "diagrams").glob("*.fdg"))
CASES = [(path, name) for path in DIAGRAMS for name in diagram_names(path)]  # a file may hold several
NEQUIP = ROOT / "diagrams" / "nequip.fdg"

# SPEC section 2: these check but do not compile yet; drawing works from the lowered IR.
MANY_BODY = """
diagram MACEProduct(mul = 64, nu = 3, species = 4) {
    input A : mul x (0e + 1o + 2e + 3o) over node
    input z : index node -> species
    output B = power(A, nu) -> mul x (0e + 1o) [weights = learned[z]]
}
diagram FusionBlock(mul = 16) {
    input a : mul x (0e + 1o + 2e) over node
    input b : mul x (0e + 1o + 2e) over node
    input c : mul x (0e + 1o + 2e) over node
    output y = fuse(a, b, c) -> mul x (0e + 1o + 2e) [weights = learned]
}
"""

# Fan-out, long skip wires, a vertex reading one value twice, sums, scaling, several outputs.
TANGLE = """
diagram Tangle(mul = 8, lmax = 3, species = 5) {
    input x   : mul x (0e + 1o + 2e) over node
    input y   : 4x0e + 2x1o + 3x2e + 1x3o over node
    input vec : 1o over edge
    input R   : weights over edge
    input src : index edge -> node
    input dst : index edge -> node
    input z   : index node -> species

    sq   = couple(x, x) -> lmax lmax [mode = outer, weights = none]
    a    = linear(sq) -> mul x (0e + 1o + 2e)
    b    = linear(y) -> mul x (0e + 1o + 2e) [weights = learned[z]]
    msg  = couple(x[src], sh(vec, lmax)) -> mul x (0e + 1o + 2e) [mode = uvu, weights = R]
    t    = a + b + sum(msg, by = dst) + x
    output first = power(t, 3) -> mul x (0e + 1o) [weights = learned[z]]
    output skip = x
    output second = 0.5 * (linear(t) -> mul x 0e)
    output third = couple(a, t) -> mul x (0e + 1o + 2e + 3o + 1e + 2o + 3e) [mode = uvw]
}
"""


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def clashes(picture: Any) -> list[str]:
    """What overlaps in a rendered picture: two texts, a text and a wire, two shapes, a text and a shape not its own."""
    canvas = FigureCanvasAgg(picture)
    canvas.draw()
    renderer = canvas.get_renderer()
    axes = picture.axes[0]
    texts = [(t.get_text(), t.get_window_extent(renderer)) for t in axes.texts]
    wires = [p.get_path().transformed(p.get_transform()) for p in axes.patches if isinstance(p, patches.PathPatch)]
    shapes = [p.get_window_extent(renderer) for p in axes.patches if not isinstance(p, patches.PathPatch)]
    found = [f"texts {a!r} and {b!r}" for (a, ba), (b, bb) in itertools.combinations(texts, 2) if ba.overlaps(bb)]
    found += [f"wire and text {t!r}" for w in wires for t, box in texts if w.intersects_bbox(box, filled=False)]
    nested = [(a, b) for a, b in itertools.combinations(shapes, 2) if a.overlaps(b)]
    # a power vertex is two concentric circles: the only shapes that may overlap
    found += [f"shapes at {a.bounds}" for a, b in nested if not (a.contains(*b.p0) and a.contains(*b.p1))]
    for t, box in texts:
        centre = ((box.x0 + box.x1) / 2, (box.y0 + box.y1) / 2)
        found += [f"text {t!r} on a shape" for s in shapes if s.overlaps(box) and not s.contains(*centre)]
    return found


@pytest.mark.parametrize(("path", "name"), CASES, ids=[name for _, name in CASES])
def test_every_diagram_draws_svg_with_its_labels(path: Path, name: str, tmp_path: Path) -> None:
    out = fdg.draw(path, name, output=tmp_path / f"{name}.svg")
    texts = svg_texts(out)
    d = fdg.lower_source(path, name)
    assert any(t.startswith(f"{d.name}(") for t in texts)
    for node in d.graph:
        op, wire = d.op(node), d.out(node)
        if isinstance(op, ir.Input | ir.Output):
            assert any(t == op.name or t.startswith(f"{op.name}: ") for t in texts), op.name
        if isinstance(wire, ir.Feature):
            assert short_irreps(wire.irreps) in texts and f"over {wire.axis}" in texts


# Diagrams that no order of their columns draws without crossings (found by an exact search over every order of
# every column, inputs included: crossings only count between neighbouring columns, so a dynamic programme along the
# columns over each one's orders finds the minimum): SEGNN's steerable maps all take the attribute as second operand,
# so its wire passes the others; NequIP's gate reads v three times, each slice under a different port.
FORCED_CROSSINGS = {"SEGNNMessage1": 2, "SEGNNUpdate1": 1, "NequIPConvNetLayer": 2}
# Where the barycenter sweeps and swaps stop above that minimum (the same search finds 4 for both MACE diagrams: a
# known limit of the heuristic, pinned so that a change to the layout shows here).
FORCED_CROSSINGS |= {"MACE": 6, "MACEFusion": 7}


@pytest.mark.parametrize(("path", "name"), CASES, ids=[name for _, name in CASES])
def test_every_diagram_is_readable(path: Path, name: str) -> None:
    assert clashes(figure([fdg.lower_source(path, name)])) == []
    assert panel(fdg.lower_source(path, name), 0.0).layout.crossings == FORCED_CROSSINGS.get(name, 0)


def test_clash_check_sees_a_label_on_a_wire() -> None:
    """The readability check above can fail: a text put on a wire is found."""
    picture = figure([fdg.lower_source(NEQUIP)])
    axes = picture.axes[0]
    wire = next(p for p in axes.patches if isinstance(p, patches.PathPatch))
    x, y = wire.get_path().vertices[1]
    axes.text(x - 10, y, "oops", va="center")
    assert any("'oops'" in c for c in clashes(picture))


def test_many_body_and_tangled_diagrams_are_readable() -> None:
    diagrams = [fdg.lower_source(MANY_BODY, name) for name in ("MACEProduct", "FusionBlock")]
    diagrams.append(fdg.lower_source(TANGLE))
    assert clashes(figure(diagrams)) == []


def test_nequip_picture_says_what_the_diagram_does(tmp_path: Path) -> None:
    texts = svg_texts(fdg.draw(NEQUIP, output=tmp_path / "n.svg", mul=16))
    expected = {
        "NequIPConv(mul=16, lmax=2)",
        "16x(0e+1o+2e)",  # h, and the gathered h
        "0e+1o+2e",  # the spherical harmonics
        "16x(0e+1o+2e+1e+2o)",  # the message
        "[src]",
        "node → edge",
        "Σ dst",
        "edge → node",
        "couple uvu",
        "w: R",
        "w: learned",
        "×0.1",
        "R: weights[240] over edge",
        "src: index edge → node",
    }
    assert expected <= set(texts)


def test_fuse_power_and_per_index_weights(tmp_path: Path) -> None:
    source = tmp_path / "many.fdg"
    source.write_text(MANY_BODY)
    texts = svg_texts(fdg.draw(source, output=tmp_path / "many.svg"))  # both diagrams, one under the other
    assert {"MACEProduct(mul=64, nu=3, species=4)", "FusionBlock(mul=16)"} <= set(texts)
    assert {"power ν=3", "w: learned[z]×4", "z: index node → 0..3", "64x(0e+1o+2e+3o)", "fuse", "tree auto"} <= set(
        texts
    )


def test_svg_is_byte_identical_across_processes(tmp_path: Path) -> None:
    here = fdg.draw(NEQUIP, output=tmp_path / "here.svg").read_bytes()
    assert fdg.draw(NEQUIP, output=tmp_path / "again.svg").read_bytes() == here
    run = [sys.executable, "-m", "fdg", "draw", str(NEQUIP), "-o", str(tmp_path / "there.svg")]
    result = subprocess.run(run, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "there.svg").read_bytes() == here


def test_png_has_signature_and_size(tmp_path: Path) -> None:
    width, height = png_size(fdg.draw(NEQUIP, output=tmp_path / "n.png"))
    svg = ET.parse(fdg.draw(NEQUIP, output=tmp_path / "n.svg")).getroot()
    view = [float(v) for v in svg.attrib["viewBox"].split()]
    assert (width, height) == (round(2 * view[2]), round(2 * view[3]))  # 144 dpi: two pixels per point
    assert 800 < width < 4000 and 200 < height < 1500


def test_short_irreps() -> None:
    assert short_irreps(Irreps("32x0e+32x1o+32x2e")) == "32x(0e+1o+2e)"
    assert short_irreps(Irreps("16x1o")) == "16x1o"
    assert short_irreps(Irreps("1x1o")) == "1o"
    assert short_irreps(Irreps("0e+1o+2e")) == "0e+1o+2e"
    assert short_irreps(Irreps("4x0e+2x1o")) == "4x0e+2x1o"
    long = Irreps("+".join(f"8x{l}{p}" for l in range(6) for p in "eo"))
    assert short_irreps(long) == "8x(0e+0o+1e+1o+2e+2o+3e+3o+…+5o) 12 irreps"
    assert len(short_irreps(long).split(" ")[0]) <= 34


def test_cli_draw(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["draw", str(NEQUIP), "-d", "NequIPConv", "-p", "mul=4", "-o", str(tmp_path / "a" / "n.png")]) == 0
    assert png_size(tmp_path / "a" / "n.png")[0] > 0
    assert f"-> {tmp_path / 'a' / 'n.png'}" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("options", "output", "message"),
    [
        ([], "n.pdf", "cannot tell the picture format of"),
        ([], "n", "cannot tell the picture format of"),
        (["-d", "Nope"], "n.svg", "no diagram 'Nope'"),
        (["-p", "nope=3"], "n.svg", "has no parameter 'nope'"),
    ],
)
def test_cli_draw_bad_arguments_exit_2(
    options: list[str], output: str, message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["draw", str(NEQUIP), *options, "-o", str(tmp_path / output)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("fdg draw: ") and message in err
    assert list(tmp_path.iterdir()) == []


def test_cli_draw_needs_output() -> None:
    with pytest.raises(SystemExit) as info:
        main(["draw", str(NEQUIP)])
    assert info.value.code == 2


def test_cli_draw_reports_program_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.fdg"
    bad.write_text("diagram D() {\n    input x : 1o\n    output y = couple(x, x) -> 1o [mode = uvu]\n}\n")
    assert main(["draw", str(bad), "-o", str(tmp_path / "bad.svg")]) == 1
    err = capsys.readouterr().err
    assert f"{bad}:3:32: error: 1o x 1o cannot produce 1o with mode uvu: parity" in err and "^" in err
    assert not (tmp_path / "bad.svg").exists()
    assert main(["draw", str(tmp_path / "missing.fdg"), "-o", str(tmp_path / "m.svg")]) == 2


def test_check_does_not_load_matplotlib() -> None:
    code = f"import sys, fdg.cli; fdg.cli.main(['check', {str(NEQUIP)!r}]); print('matplotlib' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.stdout.strip() == "False", result.stderr
