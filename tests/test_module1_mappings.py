"""Module-1 input mappings (issue 13): amplitude bias, PCA reduction, linear module 1, skip, derived encoders."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from sklearn.decomposition import PCA

from qsetfit import HeadConfig, HybridHead, QSetFitError
from qsetfit.head.encoder import amplitude_states
from qsetfit.modeling import QSetFitModel
from qsetfit.io.persistence import read_tensors
from qsetfit.training.arguments import TrainingArguments

torch.set_num_threads(1)


def test_bias_is_the_last_amplitude_and_matches_the_closed_form():
    b = 0.7
    cfg = HeadConfig(qubits=1, connectivity=0, encoder_layers=0, amplitude_bias=b, reduction="none")
    emb = torch.tensor([[-3.0, 5.0], [2.0, 0.0]], dtype=torch.float64)
    states = amplitude_states(emb, cfg)  # one qubit: one embedding entry + the bias
    assert torch.allclose(states[0, :, 1], torch.full((2,), b / np.sqrt(1 + b * b), dtype=torch.float64))
    assert torch.allclose(states.norm(dim=-1), torch.ones(1, 2, dtype=torch.float64))
    # <Z> of [s, b]/sqrt(1+b^2) with no encoder layers is (1 - b^2) / (1 + b^2), whatever the sign s
    z = HybridHead(cfg).features(emb)
    assert torch.allclose(z, torch.full((2, 1), (1 - b * b) / (1 + b * b), dtype=torch.float64))


def test_bias_zero_is_the_papers_encoding():
    emb = torch.randn(3, 20, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    paper = HeadConfig.preset("tiny")
    assert torch.equal(amplitude_states(emb, paper), amplitude_states(emb, HeadConfig(**paper.to_dict())))
    expected = emb[:, :16] / emb[:, :16].norm(dim=1, keepdim=True)
    assert torch.allclose(amplitude_states(emb, paper)[0], expected)


def test_pca_reduction_is_sklearns_fitted_on_the_training_embeddings():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(40, 12)) @ rng.normal(size=(12, 12))
    cfg = HeadConfig(qubits=2, reduction="pca", amplitude_bias=0.0)  # one 2-qubit encoder: 4 amplitudes, 4 PCs
    head = HybridHead(cfg, input_dim=12)
    head.prepare(torch.as_tensor(x))
    ours = head.reduction(torch.as_tensor(x[:5])).numpy()
    ref = PCA(n_components=4, svd_solver="full").fit(x).transform(x[:5])
    assert np.allclose(ours, ref, atol=1e-10)


def test_pca_keeps_its_shape_when_the_training_set_is_smaller_than_the_components():
    cfg = HeadConfig(qubits=4, reduction="pca", amplitude_bias=0.0)  # 16 components wanted
    head = HybridHead(cfg, input_dim=30)
    head.prepare(torch.randn(5, 30, dtype=torch.float64, generator=torch.Generator().manual_seed(2)))
    assert head.reduction.components.shape == (16, 30)
    assert head.reduction.components[5:].abs().sum() == 0  # only 5 components are supported by 5 examples


def test_unfitted_pca_and_missing_width_fail_clearly():
    with pytest.raises(QSetFitError, match="pass input_dim"):
        HybridHead(HeadConfig(qubits=2, reduction="pca"))
    head = HybridHead(HeadConfig(qubits=2, reduction="pca"), input_dim=6)
    with pytest.raises(QSetFitError, match="never fitted"):
        head(torch.zeros(1, 6, dtype=torch.float64))
    with pytest.raises(QSetFitError, match="built for 6-dim embeddings"):
        head(torch.zeros(1, 7, dtype=torch.float64))


@pytest.mark.parametrize("kwargs", [
    dict(qubits=3, amplitude_bias=0.5, reduction="pca"),
    dict(qubits=4, encoders=2, amplitude_bias=1.0, reduction="pca", pca_components=5),
    dict(qubits=3, module1="linear"),
    dict(qubits=3, module1="linear", reduction="pca", pca_components=6),
    dict(qubits=3, skip=False, measured=2),
    dict(qubits=3, module1="linear", skip=False, measured=3),
])
def test_parameter_counts_match_the_module_and_every_parameter_trains(kwargs):
    cfg = HeadConfig(connectivity=1, reuploads=1, layers=1, **kwargs)
    head = HybridHead(cfg, input_dim=10, seed=3)
    gen = torch.Generator().manual_seed(4)
    x = torch.randn(8, 10, dtype=torch.float64, generator=gen)
    head.prepare(x)
    assert sum(p.numel() for p in head.parameters()) == cfg.parameter_counts(10)["total"]
    _, loss = head(x, torch.tensor([0, 1] * 4))
    loss.backward()
    for name, p in head.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_without_skip_the_linear_layer_reads_module_2_only():
    cfg = HeadConfig(qubits=3, connectivity=1, reuploads=1, layers=1, skip=False, measured=2, reduction="none")
    head = HybridHead(cfg)
    assert head.linear.in_features == 2
    x = torch.rand(4, 8, dtype=torch.float64)
    z = head.quantum(head.features(x))
    assert torch.allclose(head(x)[0], head.linear(z))


@pytest.fixture(scope="module")
def pca_run(small_splits, tmp_path_factory):
    run = tmp_path_factory.mktemp("pca-run")
    cfg = HeadConfig(qubits=3, connectivity=1, reuploads=1, layers=1, amplitude_bias=0.5, reduction="pca")
    model = QSetFitModel(cfg)
    model.fit(small_splits.train, small_splits.validation,
              args=TrainingArguments(epochs=2, batch_size=16, learning_rate=0.05), run_dir=run, progress=False)
    return model, run


def test_pca_is_saved_with_the_run_and_reloads_to_identical_predictions_on_torch_and_aer(pca_run, small_splits):
    model, run = pca_run
    config = json.loads((run / "config.json").read_text())
    assert config["head"]["reduction"] == "pca" and config["embedding_dim"] == 384
    saved = read_tensors(run / "head.safetensors")
    assert saved["reduction.components"].shape == (7, 384) and saved["reduction.fitted"].item() == 1.0
    texts = small_splits.test.texts[:6]
    loaded = QSetFitModel.load(run)
    for backend in ("torch", "aer-exact"):
        a = model.predict_proba(texts, backend=backend)
        b = loaded.predict_proba(texts, backend=backend)
        assert np.allclose(a, b, atol=1e-9), backend
    assert np.allclose(loaded.predict_proba(texts, backend="torch"), loaded.predict_proba(texts, backend="aer-exact"),
                       atol=1e-6)


def test_linear_module1_round_trips(small_splits, tmp_path):
    model = QSetFitModel(HeadConfig(qubits=2, connectivity=1, reuploads=1, layers=1, module1="linear"))
    with pytest.raises(QSetFitError, match="not been fitted"):
        model.predict(["hello"])
    model.fit(small_splits.train, None, args=TrainingArguments(epochs=1, batch_size=32), run_dir=tmp_path / "r",
              progress=False)
    texts = small_splits.test.texts[:4]
    assert np.allclose(QSetFitModel.load(tmp_path / "r").predict_proba(texts), model.predict_proba(texts))


def test_screened_preset_ships_its_training_knobs_with_overrides():
    from qsetfit.training.arguments import TRAINING_PRESETS

    head = HeadConfig.preset("screened-sst2")
    assert head.num_parameters <= 1000 if head.module1 != "linear" else head.parameter_counts(768)["total"] <= 1000
    args = TrainingArguments.preset("screened-sst2")
    for key, value in TRAINING_PRESETS["screened-sst2"].items():
        assert getattr(args, key) == value
    assert TrainingArguments.preset("screened-sst2", epochs=3).epochs == 3
    assert TrainingArguments.preset("paper-10q-single") == TrainingArguments()
    with pytest.raises(QSetFitError, match="unknown preset"):
        TrainingArguments.preset("screened")


def test_cli_train_takes_the_presets_training_knobs_unless_given(monkeypatch, tmp_path):
    from typer.testing import CliRunner

    from qsetfit import workflow
    from qsetfit.cli import app

    seen = {}

    def fake_train(data, out, **kwargs):
        seen.update(kwargs)
        raise QSetFitError("stop here")

    monkeypatch.setattr(workflow, "train", fake_train)
    runner = CliRunner()
    runner.invoke(app, ["train", "--preset", "screened-sst2", "--out", str(tmp_path / "a")])
    assert seen["args"] == TrainingArguments.preset("screened-sst2")
    runner.invoke(app, ["train", "--preset", "screened-sst2", "--lr", "0.003", "--out", str(tmp_path / "b")])
    assert seen["args"].learning_rate == 0.003 and seen["args"].epochs == TrainingArguments.preset("screened-sst2").epochs
    result = runner.invoke(app, ["train", "--preset", "paper-10q-single", "--no-skip", "--measured", "2",
                                 "--reduction", "pca", "--amplitude-bias", "0.5", "--out", str(tmp_path / "c")])
    assert "stop here" in result.output
    wanted = {"skip": False, "measured": 2, "reduction": "pca", "amplitude_bias": 0.5}
    assert {k: seen["head_overrides"][k] for k in wanted} == wanted


@pytest.mark.parametrize("skip", [True, False])
def test_readout_weights_are_the_final_layer_with_or_without_skip(skip):
    cfg = HeadConfig(qubits=3, connectivity=1, reuploads=1, layers=1, measured=2, skip=skip, reduction="none")
    head = HybridHead(cfg, seed=2)
    gen = torch.Generator().manual_seed(5)
    f = torch.rand(4, 3, dtype=torch.float64, generator=gen)
    z = torch.rand(4, 2, dtype=torch.float64, generator=gen) * 2 - 1
    a, b, c = head.readout_weights()
    assert torch.allclose(head.readout(f, z), f @ a.T + z @ b.T + c)
    assert torch.allclose(head(f)[0], head.readout(head.features(f), head.quantum(head.features(f))))
