"""qsetfit.head.config: HeadConfig's derived fields, checks, presets and parameter counts (hand-counted)."""

from __future__ import annotations

import pytest

from qsetfit import HeadConfig, QSetFitError, build_encoder_circuit, build_head_circuit
from qsetfit.head.config import PRESETS, ansatz_layer_size


def test_qubits_alone_derives_one_encoder_reading_the_whole_register():
    c = HeadConfig(qubits=8)
    assert (c.encoders, c.encoder_qubits, c.encoder_connectivity) == (1, 8, 2)
    assert HeadConfig(qubits=8, encoders=2).encoder_qubits == 4
    assert HeadConfig(qubits=8, encoder_qubits=2).encoders == 4
    assert HeadConfig(qubits=2, connectivity=1).encoder_connectivity == 1
    with pytest.raises(QSetFitError, match="not a multiple of encoders"):
        HeadConfig(qubits=8, encoders=3)


@pytest.mark.parametrize("kwargs,match", [
    (dict(module1="quantum"), "module1 must be one of"),
    (dict(reduction="svd"), "reduction must be one of"),
    (dict(amplitude_bias=-1.0), "amplitude_bias must be"),
    (dict(amplitude_bias=float("nan")), "amplitude_bias must be"),
    (dict(pca_components=8, reduction="none"), "reduction is 'none'"),
    (dict(module1="linear", amplitude_bias=0.5), "amplitude_bias applies to amplitude encoders"),
])
def test_bad_mappings_are_refused(kwargs, match):
    with pytest.raises(QSetFitError, match=match):
        HeadConfig(qubits=4, **kwargs)


def test_defaults_are_the_screened_head_and_read_the_whole_embedding():
    assert HeadConfig() == HeadConfig.preset("screened-sst2")
    six = HeadConfig(qubits=6)
    assert (six.reduction, six.amplitude_bias, six.encoders) == ("pca", 1.0, 1)  # PCA: every dimension is read
    assert HeadConfig(qubits=3, encoders=0).reduction == "none"  # no module 1: the input feeds module 2 as it is
    assert HeadConfig(qubits=3, module1="linear").amplitude_bias == 0.0


def test_presets_and_the_paper_parameter_count():
    assert HeadConfig.preset("paper-14q-multi").num_parameters == 886
    single = HeadConfig.preset("paper-10q-single")
    assert single.encoders == 1 and single.encoder_qubits == 10 and single.qubits == 10
    assert set(PRESETS) >= {"paper-10q-single", "paper-14q-multi"}
    assert HeadConfig.preset("paper-10q-single", classes=5).classes == 5
    with pytest.raises(QSetFitError, match=r"unknown preset 'paper'.*paper-14q-multi"):
        HeadConfig.preset("paper")


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(qubits=0, encoders=0), "qubits must be >= 1"),
        (dict(qubits=4, connectivity=4, encoders=0), "connectivity must be in"),
        (dict(qubits=4, measured=5, encoders=0), "measured must be in"),
        (dict(qubits=21, encoders=1, encoder_qubits=21), "encoder_qubits must be in"),
        (dict(classes=1), "classes must be >= 2"),
        (dict(qubits=12, encoders=2, encoder_qubits=5), "qubits .12. must equal encoders x encoder_qubits"),
        (dict(encoder_input="both"), "encoder_input"),
    ],
)
def test_bad_configurations_are_rejected(kwargs, match):
    with pytest.raises(QSetFitError, match=match):
        HeadConfig(**kwargs)


def test_from_dict_round_trip_and_unknown_keys():
    cfg = HeadConfig.preset("paper-14q-multi")
    assert HeadConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(QSetFitError, match=r"unknown HeadConfig key.*qbits.*valid keys"):
        HeadConfig.from_dict({"qbits": 3})


def test_parameter_counts_by_hand():
    # tiny: one 4-qubit encoder of 1 layer (C=1): 4 + 4; module 2 (N=1, R=1, C=1): 2 x 8; linear (4 + 1) x 2 + 2
    assert HeadConfig.preset("tiny").parameter_counts() == {"encoders": 8, "module2": 16, "linear": 12, "total": 36}
    # paper-10q-single: 2 encoder layers of 10 x 2 + 10; module 2 (2 + 2) x 30; linear 11 x 2 + 2
    assert HeadConfig.preset("paper-10q-single").num_parameters == 60 + 120 + 24
    shared = HeadConfig(qubits=3, encoders=0, reuploads=3, layers=1, share_reupload_weights=True)
    assert shared.parameter_counts()["module2"] == (1 + 1) * (3 * 1 + 3)  # one block's weights, reused
    linear = HeadConfig(qubits=3, module1="linear", reduction="pca", pca_components=6)
    assert linear.parameter_counts(384)["encoders"] == (6 + 1) * 3  # the PCA's components are not trained
    with pytest.raises(QSetFitError, match=r"module1='linear' has .* pass input_dim"):
        _ = HeadConfig(qubits=3, module1="linear").num_parameters


def test_ansatz_layer_size_is_the_angle_count_of_a_built_layer():
    for q, c in [(1, 0), (4, 1), (5, 3), (7, 6)]:
        assert ansatz_layer_size(q, c) == len(build_encoder_circuit(q, 1, c).weights) == q * c + q
    cfg = HeadConfig(qubits=5, connectivity=2, encoders=0, reuploads=2, layers=1)
    assert cfg.parameter_counts()["module2"] == len(build_head_circuit(cfg).weights)


def test_widths_module1_reads_and_the_linear_layer_sees():
    biased = HeadConfig(qubits=4)  # one 4-qubit encoder, PCA, bias: 16 amplitudes, one holds the bias
    assert (biased.encoder_dim, biased.encoder_read_width, biased.reduced_dim(384)) == (16, 15, 15)
    split = HeadConfig(qubits=4, encoders=2, amplitude_bias=0.0, reduction="none")
    assert (split.encoder_dim, split.encoder_read_width, split.reduced_dim(384)) == (4, 8, 384)
    shared = HeadConfig(qubits=4, encoders=2, encoder_input="shared")
    assert shared.encoder_read_width == 3 and shared.reduced_dim(384) == 3
    assert HeadConfig(qubits=3, module1="linear", reduction="pca").reduced_dim(384) == 384  # 0: the embedding width
    assert HeadConfig(qubits=3, encoders=0, reduction="pca").reduced_dim(384) == 3  # straight into module 2
    assert HeadConfig(qubits=3, measured=2).linear_inputs == 3 + 2
    assert HeadConfig(qubits=3, measured=2, skip=False).linear_inputs == 2
    assert not HeadConfig(qubits=3, encoders=0).has_module1 and HeadConfig(qubits=3, module1="linear").has_module1
