"""Backend and noise profiles: every shipped file loads, typos and unknown names get clear errors, look-up order."""

from __future__ import annotations

from pathlib import Path

import pytest

from qsetfit import HeadConfig, QSetFitError, available_engines, build_head_circuit, make_engine
import qsetfit.engines.aer.engine  # noqa: F401 - registers the "aer" engine kind
from qsetfit import profiles
from qsetfit.profiles import (
    BackendProfile,
    NoiseProfile,
    list_profiles,
    load_backend_profile,
    load_noise_profile,
    profile_names,
)

REPO = Path(__file__).resolve().parents[1]
SHIPPED_BACKENDS = sorted(p.stem for p in (REPO / "backends").glob("*.toml"))
SHIPPED_NOISE = sorted(p.stem for p in (REPO / "noise_models").glob("*.toml"))


def test_the_issue_profiles_are_shipped():
    assert {"aer-exact", "aer-shots", "aer-depolarizing", "aer-device"} <= set(SHIPPED_BACKENDS)
    assert {"depolarizing-1e-4", "depolarizing-1e-3", "depolarizing-1e-2", "fake_torino"} <= set(SHIPPED_NOISE)


@pytest.mark.parametrize("name", SHIPPED_BACKENDS)
def test_every_shipped_backend_profile_loads(name):
    profile = load_backend_profile(name)
    assert profile.name == name and profile.description
    if profile.engine == "aer":  # its noise model must exist too
        load_noise_profile(profile.noise_model)


@pytest.mark.parametrize("name", SHIPPED_NOISE)
def test_every_shipped_noise_profile_loads(name):
    profile = load_noise_profile(name)
    assert profile.name == name and profile.description
    assert not profile.is_ideal


def test_list_profiles_is_one_call_with_descriptions():
    rows = list_profiles()
    names = {(r.kind, r.name) for r in rows}
    assert {("backend", n) for n in SHIPPED_BACKENDS} <= names
    assert {("noise", n) for n in SHIPPED_NOISE} <= names
    assert all(r.description and not r.description.startswith("(invalid") for r in rows)
    assert [r.kind for r in rows] == sorted(r.kind for r in rows)  # backends first


def test_backend_profiles_are_engine_names():
    assert set(SHIPPED_BACKENDS) <= set(available_engines())


def test_typo_in_a_key_names_the_nearest_field(tmp_path):
    path = tmp_path / "typo.toml"
    path.write_text('engine = "aer"\nshot = 100\n')
    with pytest.raises(QSetFitError, match=r"unknown key 'shot' in .*typo\.toml; did you mean 'shots'\?.*valid keys"):
        BackendProfile.from_toml(path)
    path.write_text('kind = "depolarizing"\np_1 = 0.1\n')
    with pytest.raises(QSetFitError, match=r"did you mean 'p1'\?"):
        NoiseProfile.from_toml(path)


def test_wrong_types_and_values_are_rejected(tmp_path):
    path = tmp_path / "bad.toml"
    for text, pattern in [
        ('shots = "many"', r"'shots' .* must be of type int"),
        ("shots = -1", r"shots must be >= 0"),
        ('method = "automatic"', r"method must be one of statevector, density_matrix.*never 'automatic'"),
        ('method = "density_matrx"', r"did you mean 'density_matrix'"),
        ('engine = "aer"\nbackend = "fake_torino"', r"backend = 'fake_torino' is for engine = 'ibm'"),
        ('engine = "ibm"\nbackend = "fake_torino"\nlocal = "narow"', r"local must be one of compact, narrow, "
         r"device, got 'narow'; did you mean 'narrow'\?"),
        ('local = "narrow"', r"local = 'narrow' is for engine = 'ibm' on a fake backend; remove the key"),
    ]:
        path.write_text(text + "\n")
        with pytest.raises(QSetFitError, match=pattern):
            BackendProfile.from_toml(path)
    for text, pattern in [
        ("p1 = 1.5", r"p1 must be a probability"),
        ("readout = 0.1\nreadout_p01 = 0.2", r"either readout .* or readout_p01/readout_p10"),
        ('kind = "device"', r"needs backend"),
    ]:
        path.write_text(text + "\n")
        with pytest.raises(QSetFitError, match=pattern):
            NoiseProfile.from_toml(path)
    path.write_text("shots = [\n")
    with pytest.raises(QSetFitError, match="not valid TOML"):
        BackendProfile.from_toml(path)


def test_unknown_profile_names_list_the_available_ones():
    with pytest.raises(QSetFitError, match=r"unknown backend profile 'aer-exakt'; did you mean 'aer-exact'\?.*aer-shots"):
        load_backend_profile("aer-exakt")
    with pytest.raises(QSetFitError, match=r"unknown noise profile 'nope'.*depolarizing-1e-3"):
        load_noise_profile("nope")
    with pytest.raises(QSetFitError, match="not found"):
        load_backend_profile("missing/profile.toml")
    hc = build_head_circuit(HeadConfig(qubits=2, connectivity=1, reuploads=1, layers=0, encoders=0))
    with pytest.raises(QSetFitError, match=r"unknown engine or backend 'aer-nope'; available: .*aer-exact"):
        make_engine(hc, "aer-nope")


def test_lookup_by_path_and_env_folder_overrides_shipped(tmp_path, monkeypatch):
    (tmp_path / "backends").mkdir()
    (tmp_path / "noise_models").mkdir()
    (tmp_path / "backends" / "aer-exact.toml").write_text('description = "mine"\nshots = 7\n')
    (tmp_path / "noise_models" / "my-noise.toml").write_text('description = "tiny"\np1 = 0.01\n')
    (tmp_path / "loose.toml").write_text('description = "by path"\nmethod = "density_matrix"\n')
    monkeypatch.setenv(profiles.ENV_VAR, str(tmp_path))
    assert load_backend_profile("aer-exact").shots == 7  # first match wins: the user's folder
    assert load_noise_profile("my-noise").p1 == 0.01
    assert "my-noise" in profile_names("noise")
    assert load_backend_profile(str(tmp_path / "loose.toml")).name == "loose"
    monkeypatch.delenv(profiles.ENV_VAR)
    assert load_backend_profile("aer-exact").shots == 0


def test_replace_checks_overrides_like_toml():
    profile = load_backend_profile("aer-shots")
    assert profile.replace(shots=10).shots == 10 and profile.replace(shots=10).name == "aer-shots"
    with pytest.raises(QSetFitError, match=r"unknown option 'shot' for profile 'aer-shots'; did you mean 'shots'"):
        profile.replace(shot=10)


def test_readout_shorthand_and_ideal():
    assert NoiseProfile(readout=0.1).readout_flips == (0.1, 0.1)
    assert NoiseProfile(readout_p01=0.1, readout_p10=0.3).readout_flips == (0.1, 0.3)
    assert NoiseProfile().is_ideal and load_noise_profile("none").is_ideal
    assert not NoiseProfile(readout=0.01).is_ideal


def test_unknown_engine_kind_gets_a_clear_error(monkeypatch):
    from qsetfit.engines import registry

    monkeypatch.setitem(registry._PROFILE_KINDS, "ibm", "qsetfit.engines.no_such_runtime_module:engine_from_profile")
    profile = BackendProfile(name="fake-ibm", engine="ibm", backend="fake_torino")
    with pytest.raises(QSetFitError, match=r"engine = 'ibm', which this installation does not provide.*available: aer"):
        registry.build_engine(None, profile)
