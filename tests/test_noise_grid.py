"""The ``bench noise`` grid (bench/noise_grid.py): cells, their names, and profiles that load back as written."""

from __future__ import annotations

import pytest

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10, as in qsetfit.profiles
    import tomli as tomllib

from qsetfit.bench.noise_grid import QUICK, Cell, _toml_value, noise_grid, write_profiles
from qsetfit.errors import QSetFitError
from qsetfit.profiles import load_backend_profile, load_noise_profile


def test_grid_and_profiles_load_back(tmp_path):
    cells = noise_grid(p2_grid=(0.0, 1e-3), readout=0.01, shots_grid=(64, "exact"), fake_backends=("fake_torino",),
                       trajectories=7)
    assert [c.name for c in cells] == ["p2-0", "p2-0.001", "shots-64", "shots-exact", "device-fake_torino"]
    paths = write_profiles(cells, tmp_path)
    dep = load_backend_profile(str(paths["p2-0.001"]))
    assert dep.method == "density_matrix" and dep.shots == 0 and dep.trajectories == 7
    noise = load_noise_profile(dep.noise_model)
    assert (noise.p1, noise.p2, noise.readout) == (pytest.approx(1e-4), 1e-3, 0.01)
    assert load_backend_profile(str(paths["shots-64"])).shots == 64
    device = load_backend_profile(str(paths["device-fake_torino"]))
    assert load_noise_profile(device.noise_model).backend == "fake_torino"
    # p2 = 0 with readout keeps the readout error; p2 = 0 without it is the ideal simulation
    assert load_noise_profile(load_backend_profile(str(paths["p2-0"])).noise_model).readout == 0.01
    assert noise_grid(p2_grid=(0.0,), shots_grid=(), fake_backends=())[0].noise is None


@pytest.mark.parametrize("kwargs,message", [({"shots_grid": ("many",)}, "shots"), ({"p2_grid": (2.0,)}, "p2"),
                                            ({"trajectories": 0}, "trajectories"),
                                            ({"p2_grid": (), "shots_grid": (), "fake_backends": ()}, "empty")])
def test_grid_rejects_bad_values(kwargs, message):
    with pytest.raises(QSetFitError, match=message):
        noise_grid(**kwargs)


def test_cells_are_named_by_axis_and_value():
    assert [Cell("p2", 1e-3, {}).name, Cell("p2", 0.0, {}).name, Cell("shots", 256, {}).name,
            Cell("shots", 0, {}).name, Cell("device", "fake_fez", {}).name] == [
        "p2-0.001", "p2-0", "shots-256", "shots-exact", "device-fake_fez"]


def test_the_grid_sets_p1_to_a_tenth_of_p2_and_drops_none_backends():
    cells = noise_grid(p2_grid=(0.0, 3e-3), shots_grid=("exact", " 64 ", "inf"), fake_backends=("none", "fake_fez"))
    assert [c.name for c in cells] == ["p2-0", "p2-0.003", "shots-exact", "shots-64", "shots-exact",
                                       "device-fake_fez"]
    ideal, noisy = cells[0], cells[1]
    assert ideal.noise is None and ideal.backend["method"] == "statevector"
    assert noisy.noise["p1"] == pytest.approx(3e-4) and noisy.backend["method"] == "density_matrix"
    assert [c.backend["shots"] for c in cells[2:5]] == [0, 64, 0]
    assert len(noise_grid(**{k: QUICK[k] for k in ("p2_grid", "shots_grid", "fake_backends", "trajectories")})) == 5


@pytest.mark.parametrize("readout", [-0.1, 0.6])
def test_a_readout_error_outside_a_flip_probability_is_refused(readout):
    with pytest.raises(QSetFitError, match="readout must be a flip probability"):
        noise_grid(readout=readout)


def test_toml_values_parse_back_to_what_was_written():
    values = {"flag": True, "off": False, "n": 7, "p": 1e-4, "tiny": 3.0000000000000004e-05,
              "name": 'say "hi" \\ ok', "path": "/tmp/a b/noise.toml"}
    text = "".join(f"{k} = {_toml_value(v)}\n" for k, v in values.items())
    assert tomllib.loads(text) == values  # the standard TOML parser reads back every value exactly
    with pytest.raises(QSetFitError, match="cannot write"):
        _toml_value([1, 2])


def test_on_axes_keeps_the_chosen_axes_and_refuses_unknown_ones():
    from qsetfit.bench.noise_grid import on_axes

    cells = noise_grid(p2_grid=(0.0, 1e-3), shots_grid=(64,), fake_backends=("fake_torino",))
    assert [c.name for c in on_axes(cells, ["p2"])] == ["p2-0", "p2-0.001"]
    assert [c.axis for c in on_axes(cells, ["shots", "device"])] == ["shots", "device"]
    assert on_axes(cells, None) == cells
    for bad in (["p3"], []):
        with pytest.raises(QSetFitError, match="--grid takes p2, shots, device"):
            on_axes(cells, bad)
