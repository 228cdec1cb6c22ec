"""``fdg.interop.mace.convert`` turns mace-torch 0.3.16 models of varied sizes into fdg potentials that give the same
energies, forces and stresses on mace's own batches (``batch.to_dict()``, periodic shifts included): 1e-9 relative
in float64, 1e-5 in float32.  What it cannot convert it refuses by name.

Run in the MACE environment (``make test-mace``)."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from mace.modules.blocks import RealAgnosticDensityInteractionBlock
from models import batch, build_mace, configurations

import fdg
from fdg.cli import main
from fdg.interop import potential
from fdg.interop.mace import convert

warnings.filterwarnings("ignore", message="The TorchScript type system")  # raised inside MACE's own modules

MODELS = {  # build_mace's arguments: each case varies what the others keep
    "default": {},
    "three-layers": {
        "hidden": "2x0e + 2x1o + 2x2e",
        "lmax": 2,
        "correlation": [3, 2, 2],
        "interactions": 3,
        "species": 3,
        "residual_first": True,
        "radial": (6, 5),
    },
    "one-layer-scalars": {"hidden": "4x0e", "lmax": 2, "correlation": 2, "interactions": 1, "bessels": 5, "p": 6},
    "scale-shift": {
        "hidden": "2x0e + 2x1o",
        "scale_shift": (1.7, -0.3),
        "readout": "3x0e",
        "r_max": 3.5,
        "avg": 7.5,
        "gate": torch.tanh,
        "use_last_readout_only": True,
    },
}


def _compare(model, structures, species: int, r_max: float, rtol: float, dtype: torch.dtype) -> None:
    """Energies, site energies, forces and (for periodic cells) stresses of both models on the same batch."""
    ours = convert(model).to(dtype)
    expected = model(batch(structures, species, r_max), compute_force=True, compute_stress=True)
    got = ours(
        {k: v.to(dtype) if v.is_floating_point() else v for k, v in batch(structures, species, r_max).items()},
        compute_stress=True,
    )
    for key in ("energy", "node_energy", "forces", "stress")[: 4 if structures[0].pbc.all() else 3]:
        scale = expected[key].abs().max().item()
        assert scale > 1e-3, key  # not a comparison of zeros
        torch.testing.assert_close(got[key].double(), expected[key].detach(), rtol=0, atol=rtol * scale, msg=key)


@pytest.mark.parametrize("case", MODELS, ids=list(MODELS))
def test_converted_model_equals_mace(case: str) -> None:
    options = MODELS[case]
    model = build_mace(**options)
    species, r_max = options.get("species", 2), options.get("r_max", 4.0)
    _compare(model, configurations(species, periodic=True), species, r_max, 1e-9, torch.float64)
    _compare(model, configurations(species, periodic=False, seed=1), species, r_max, 1e-9, torch.float64)


def test_float32_within_1e5() -> None:
    model = build_mace()
    _compare(model, configurations(2, periodic=True), 2, 4.0, 1e-5, torch.float32)


def test_energy_is_invariant_and_forces_equivariant_under_rotation_and_inversion() -> None:
    model = convert(build_mace(hidden="2x0e + 2x1o + 2x1e", lmax=2))
    (atoms,) = configurations(2, periodic=True, count=1)
    rotation = torch.linalg.qr(torch.randn(3, 3, generator=torch.Generator().manual_seed(3)))[0]
    for matrix in (rotation, -rotation):  # det -1 after one sign flip or the other: both proper and improper
        moved = atoms.copy()
        moved.set_cell(atoms.cell.array @ matrix.numpy().T, scale_atoms=True)
        before, after = (model(batch([a], 2, 4.0), compute_stress=True) for a in (atoms, moved))
        torch.testing.assert_close(after["energy"], before["energy"], rtol=1e-10, atol=0)
        torch.testing.assert_close(after["forces"], before["forces"] @ matrix.T, rtol=0, atol=1e-10)
        torch.testing.assert_close(after["stress"][0], matrix @ before["stress"][0] @ matrix.T, rtol=0, atol=1e-10)


def test_text_compiles_alone_and_saved_folder_reloads(tmp_path: Path) -> None:
    model = build_mace(hidden="2x0e + 2x1o", interactions=3, correlation=2)
    converted = convert(model)
    assert converted.text.count("power(") == 3 and converted.write(tmp_path / "m.fdg").read_text() == converted.text
    assert not fdg.check(converted.text)
    reloaded = potential.load(converted.save(tmp_path / "saved"))
    structures = configurations(2, periodic=True)
    for key, value in converted(batch(structures, 2, 4.0)).items():
        torch.testing.assert_close(reloaded(batch(structures, 2, 4.0))[key], value, rtol=0, atol=0)
    assert "energy" in (tmp_path / "saved" / potential.REPORT).read_text()


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"radial_type": "gaussian"}, "radial_type: the model's radial basis is GaussianBasis"),
        ({"distance_transform": "Agnesi"}, "distance_transform: AgnesiTransform"),
        ({"pair_repulsion": True}, "pair repulsion"),
        ({"apply_cutoff": False}, "apply_cutoff=False"),
        ({"heads": ["a", "b"]}, "2 heads"),
        ({"use_agnostic_product": True}, "use_agnostic_product"),
        ({"hidden": "2x0e + 2x0o"}, "power cannot produce 0o"),
    ],
)
def test_unsupported_options_are_refused_by_name(options: dict, message: str) -> None:
    if "heads" in options:
        options |= {"atomic_energies": np.zeros((2, 2))}
    with pytest.raises(ValueError, match=message):
        convert(build_mace(**options))


def test_another_interaction_class_is_refused() -> None:
    model = build_mace()
    model.interactions[1].__class__ = RealAgnosticDensityInteractionBlock
    with pytest.raises(ValueError, match=r"interactions\.1 is a RealAgnosticDensityInteractionBlock"):
        convert(model)


def test_port_command_writes_a_folder_that_reloads(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    model = build_mace(hidden="2x0e + 2x1o", scale_shift=(0.5, 0.1))
    torch.save(model, tmp_path / "model.pt")
    assert main(["port", "mace", str(tmp_path / "model.pt"), "-o", str(tmp_path / "out")]) == 0
    assert "model.fdg" in capsys.readouterr().out
    structures = configurations(2, periodic=True)
    expected = model(batch(structures, 2, 4.0))
    got = potential.load(tmp_path / "out")(batch(structures, 2, 4.0))
    torch.testing.assert_close(got["forces"], expected["forces"].detach(), rtol=0, atol=1e-9)
