"""``HeadConfig``: every knob of the hybrid head, its checks and parameter counts, and the named presets.

The circuits these knobs describe are built in ``qsetfit.head.circuits``; ``ansatz_layer_size`` lives here
because the parameter counts need it (a layer with connectivity C on Q qubits holds Q*C + Q angles).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import Any

from qsetfit.errors import QSetFitError, check_keys

MAX_ENCODER_QUBITS = 20
MODULE1_KINDS = ("amplitude", "linear")
REDUCTIONS = ("none", "pca")


@dataclass
class HeadConfig:
    """Every knob of the hybrid head (module 1 encoders + module 2 circuit + linear read-out).

    Attributes:
        qubits: Q, width of module 2. Must equal ``encoders * encoder_qubits`` when encoders > 0,
            because module 2 angle-encodes one encoder read-out per qubit.
        connectivity: C in [0, Q): CNOT distances 1..C in each ansatz layer of module 2.
        reuploads: N, data re-uploading blocks (RY encoding + one ansatz layer each).
        layers: R, ansatz layers after the re-uploading blocks.
        measured: Qm, number of qubits whose <Z> is read (qubits 0..Qm-1; the paper: 1).
        encoders: E, parallel amplitude encoders of module 1 (0: the input features go straight
            to module 2 and must have Q entries).
        encoder_qubits: Qc, qubits per encoder (embedding truncated / zero-padded to 2**Qc).
        encoder_layers: ansatz layers per encoder.
        encoder_connectivity: connectivity of the encoders' ansatz layers.
        classes: K >= 2 output classes.
        share_reupload_weights: reuse one ansatz layer's weights in every re-uploading block
            (the paper is ambiguous; default separate weights).
        input_scale: module 2 encodes feature f_k as RY(input_scale * f_k); read-outs are in [-1, 1].
        encoder_input: "split" (encoder i reads slice i of the embedding, 2**Qc entries each) or
            "shared" (every encoder reads the same truncated embedding).
        amplitude_bias: b >= 0. When > 0, the last amplitude of every encoder's register holds b: the
            encoder's slice is L2-normalised, b appended, and the state renormalised, so the read-outs gain
            a term linear in the embedding (without it they are quadratic forms). 0: off (the paper).
        reduction: "none", or "pca": project the embedding onto its top principal components (scikit-learn
            PCA, fitted on the training embeddings only, saved with the head) before module 1, so any
            embedding width fits the amplitudes and every encoder reads all of it.
        pca_components: with reduction="pca", how many components; 0 = as many as module 1 reads
            (the encoders' amplitudes, or the embedding width for module1="linear").
        module1: "amplitude" (the paper's simulated PQC encoders) or "linear" (a learned linear
            projection embedding -> Q features, fed to module 2 as RY angles).
        skip: the final linear layer sees module 1's Q features beside module 2's read-outs (the paper's
            Q + Qm inputs). False: module 2's read-outs only, so every prediction goes through the circuit
            (use measured > 1 to give the linear layer width).

    Defaults are the SST-2 screening study's winner (``preset("screened-sst2")``): Q = 6, C = 1, N = 1, R = 2,
    one 6-qubit encoder of 2 layers reading the PCA of the embedding with amplitude_bias 1 (amplitude encoders get
    reduction "pca" and amplitude_bias 1.0 unless set; other module-1 kinds "none" and 0). ``connectivity``
    defaults to min(1, Q - 1). ``encoders`` and ``encoder_qubits`` are derived when left unset (None): one encoder
    of Q qubits, or Q / E qubits for E encoders, or Q / Qc encoders; ``encoder_connectivity`` defaults to
    min(2, Qc - 1).
    """

    qubits: int = 6
    connectivity: int | None = None
    reuploads: int = 1
    layers: int = 2
    measured: int = 1
    encoders: int | None = None
    encoder_qubits: int | None = None
    encoder_layers: int = 2
    encoder_connectivity: int | None = None
    classes: int = 2
    share_reupload_weights: bool = False
    input_scale: float = math.pi
    encoder_input: str = "split"
    amplitude_bias: float | None = None
    reduction: str | None = None
    pca_components: int = 0
    module1: str = "amplitude"
    skip: bool = True

    def __post_init__(self) -> None:
        q = self.qubits
        if not isinstance(q, int) or q < 1:
            raise QSetFitError(f"qubits must be >= 1 (an integer), got {q!r}")
        if self.connectivity is None:
            self.connectivity = min(1, q - 1)
        self._derive_encoders()
        assert self.encoders is not None and self.encoder_qubits is not None  # _derive_encoders set them
        assert self.encoder_connectivity is not None
        amplitude = self.module1 == "amplitude" and bool(self.encoders)
        if self.amplitude_bias is None:  # the screening study's mapping: PCA + bias (README, sst2-screen)
            self.amplitude_bias = 1.0 if amplitude else 0.0
        if self.reduction is None:
            self.reduction = "pca" if amplitude else "none"
        self._check_module1()
        if not 0 <= self.connectivity < q:
            raise QSetFitError(
                f"connectivity must be in [0, qubits={q}) (CNOT distances 1..C on a ring of {q}), "
                f"got {self.connectivity}; use connectivity <= {q - 1}"
            )
        if self.reuploads < 0 or self.layers < 0:
            raise QSetFitError(f"reuploads and layers must be >= 0, got {self.reuploads}, {self.layers}")
        if self.reuploads == 0 and self.has_module1:
            raise QSetFitError("reuploads must be >= 1 so module 2 sees the encoder features, got 0")
        if not 1 <= self.measured <= q:
            raise QSetFitError(f"measured must be in [1, qubits={q}], got {self.measured}")
        if self.classes < 2:
            raise QSetFitError(f"classes must be >= 2, got {self.classes}")
        if self.encoders < 0:
            raise QSetFitError(f"encoders must be >= 0, got {self.encoders}")
        if self.encoders > 0:
            qc = self.encoder_qubits
            if not 1 <= qc <= MAX_ENCODER_QUBITS:
                raise QSetFitError(
                    f"encoder_qubits must be in [1, {MAX_ENCODER_QUBITS}] (each encoder is simulated "
                    f"exactly on 2**Qc amplitudes), got {qc}"
                )
            if not 0 <= self.encoder_connectivity < qc:
                raise QSetFitError(
                    f"encoder_connectivity must be in [0, encoder_qubits={qc}), got {self.encoder_connectivity}"
                )
            if self.encoder_layers < 0:
                raise QSetFitError(f"encoder_layers must be >= 0, got {self.encoder_layers}")
            if self.encoders * qc != q:
                raise QSetFitError(
                    f"module 2 angle-encodes one encoder read-out per qubit: qubits ({q}) must equal "
                    f"encoders x encoder_qubits ({self.encoders} x {qc} = {self.encoders * qc}); "
                    f"set qubits={self.encoders * qc} or change encoders/encoder_qubits"
                )
        if self.encoder_input not in ("split", "shared"):
            raise QSetFitError(f"encoder_input must be 'split' or 'shared', got {self.encoder_input!r}")

    def _derive_encoders(self) -> None:
        """Fill unset encoders / encoder_qubits / encoder_connectivity from Q (``HeadConfig(qubits=8)`` works)."""
        q = self.qubits
        if self.module1 == "linear":  # no encoders: the projection gives Q features directly
            self.encoders, self.encoder_qubits = 0, self.encoder_qubits or q
        elif self.encoders is None and self.encoder_qubits is None:
            self.encoders, self.encoder_qubits = (1, q) if q <= MAX_ENCODER_QUBITS else (0, q)
        elif self.encoder_qubits is None:
            if self.encoders and q % self.encoders:
                raise QSetFitError(
                    f"qubits ({q}) is not a multiple of encoders ({self.encoders}); module 2 takes "
                    "one encoder read-out per qubit: change qubits or encoders"
                )
            self.encoder_qubits = q // self.encoders if self.encoders else q
        elif self.encoders is None:
            if q % self.encoder_qubits:
                raise QSetFitError(
                    f"qubits ({q}) is not a multiple of encoder_qubits ({self.encoder_qubits}); "
                    "change qubits or encoder_qubits"
                )
            self.encoders = q // self.encoder_qubits
        if self.encoder_connectivity is None:
            self.encoder_connectivity = max(0, min(2, self.encoder_qubits - 1))

    def _check_module1(self) -> None:
        """Ranges and combinations of the module-1 input mappings."""
        if self.module1 not in MODULE1_KINDS:
            raise QSetFitError(f"module1 must be one of {MODULE1_KINDS}, got {self.module1!r}")
        if self.reduction not in REDUCTIONS:
            raise QSetFitError(f"reduction must be one of {REDUCTIONS}, got {self.reduction!r}")
        assert self.amplitude_bias is not None and self.encoder_qubits is not None  # set by __post_init__
        if not (math.isfinite(self.amplitude_bias) and self.amplitude_bias >= 0):
            raise QSetFitError(f"amplitude_bias must be a finite number >= 0, got {self.amplitude_bias}")
        if self.pca_components < 0:
            raise QSetFitError(f"pca_components must be >= 0 (0: as many as module 1 reads), got {self.pca_components}")
        if self.pca_components and self.reduction != "pca":
            raise QSetFitError("pca_components is set but reduction is 'none'; set reduction='pca' or drop it")
        if self.amplitude_bias and (self.module1 != "amplitude" or not self.encoders):
            raise QSetFitError(
                "amplitude_bias applies to amplitude encoders; set module1='amplitude' with "
                "encoders >= 1, or amplitude_bias=0"
            )
        if self.amplitude_bias and self.encoder_qubits < 1:
            raise QSetFitError("amplitude_bias needs encoder_qubits >= 1")

    @property
    def has_module1(self) -> bool:
        """Whether a module 1 maps the embedding to Q features (False: the input feeds module 2 as it is)."""
        return self.module1 == "linear" or bool(self.encoders)

    def reduced_dim(self, input_dim: int) -> int:
        """Width of the embedding after the reduction (the PCA's components, or ``input_dim``)."""
        if self.reduction == "none":
            return input_dim
        if self.pca_components:
            return self.pca_components
        if self.module1 == "linear" or not self.encoders:
            return input_dim if self.module1 == "linear" else self.qubits
        return self.encoder_read_width

    @property
    def encoder_read_width(self) -> int:
        """Embedding entries module 1's encoders read (one register slot each holds the bias when b > 0)."""
        per = self.encoder_dim - (1 if self.amplitude_bias else 0)
        assert self.encoders is not None  # set by __post_init__
        return per * (self.encoders if self.encoder_input == "split" else 1)

    @property
    def linear_inputs(self) -> int:
        """Inputs of the final linear layer: [features f (if skip), module-2 read-outs]."""
        return (self.feature_dim if self.skip else 0) + self.measured

    @classmethod
    def preset(cls, name: str, **overrides: Any) -> HeadConfig:
        """A named configuration of the paper (see ``PRESETS``), with optional field overrides."""
        if name not in PRESETS:
            raise QSetFitError(f"unknown preset {name!r}; available presets: {', '.join(sorted(PRESETS))}")
        return cls(**{**PRESETS[name], **overrides})

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> HeadConfig:
        """Build from a dict (e.g. config.json), rejecting unknown keys with the valid ones listed."""
        check_keys(values, [f.name for f in fields(cls)], "HeadConfig key")
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form of every field."""
        return asdict(self)

    @property
    def feature_dim(self) -> int:
        """Width of the classical features f fed to module 2 (and to the final linear layer)."""
        return self.qubits

    @property
    def encoder_dim(self) -> int:
        """Amplitudes read by one encoder."""
        assert self.encoder_qubits is not None  # set by __post_init__
        return 2**self.encoder_qubits

    def parameter_counts(self, input_dim: int | None = None) -> dict[str, int]:
        """Trainable parameters per part: encoders (module 1), module 2, linear layer, total.

        A linear module 1 has (reduced width + 1) x Q weights, so it needs ``input_dim`` (the embedding width).
        The PCA of ``reduction="pca"`` is fitted, not trained: its components are not counted.
        """
        if self.module1 == "linear":
            if input_dim is None:
                raise QSetFitError("module1='linear' has (embedding width + 1) x qubits weights; pass input_dim")
            enc = (self.reduced_dim(input_dim) + 1) * self.qubits
        else:
            assert self.encoders is not None and self.encoder_qubits is not None  # set by __post_init__
            assert self.encoder_connectivity is not None
            enc = (
                self.encoders * self.encoder_layers * ansatz_layer_size(self.encoder_qubits, self.encoder_connectivity)
            )
        blocks = min(self.reuploads, 1) if self.share_reupload_weights else self.reuploads
        assert self.connectivity is not None  # set by __post_init__
        head = (blocks + self.layers) * ansatz_layer_size(self.qubits, self.connectivity)
        linear = self.linear_inputs * self.classes + self.classes
        return {"encoders": enc, "module2": head, "linear": linear, "total": enc + head + linear}

    @property
    def num_parameters(self) -> int:
        """Total trainable parameters of the hybrid head (module1='linear': use ``parameter_counts(input_dim)``)."""
        return self.parameter_counts()["total"]


# Where the paper is silent we chose (documented in the README):
# - module 2 width = E x Qc, one encoder read-out per qubit, scale pi (read-outs lie in [-1, 1]);
# - paper-14q-multi: 2 encoders x 7 qubits reading consecutive 128-entry slices of the embedding;
#   module 2 C=2, N=2, R=2 (the benchmark shape); encoders of 7 layers with full connectivity (C=6)
#   make the total exactly the reported 886 parameters: 686 encoder + 168 module-2 + 32 linear.
# - paper-10q-single: 1 encoder x 10 qubits (768 -> 1024 amplitudes), 2 encoder layers of C=2.
PAPER_MODULE1 = dict(amplitude_bias=0.0, reduction="none", module1="amplitude", skip=True)
PRESETS: dict[str, dict[str, Any]] = {
    "paper-10q-single": dict(
        qubits=10,
        connectivity=2,
        reuploads=2,
        layers=2,
        measured=1,
        encoders=1,
        encoder_qubits=10,
        encoder_layers=2,
        encoder_connectivity=2,
        classes=2,
        **PAPER_MODULE1,
    ),
    "paper-14q-multi": dict(
        qubits=14,
        connectivity=2,
        reuploads=2,
        layers=2,
        measured=1,
        encoders=2,
        encoder_qubits=7,
        encoder_layers=7,
        encoder_connectivity=6,
        classes=2,
        **PAPER_MODULE1,
    ),
    # The SST-2 screening study's winner by validation (benchmarks/studies/sst2-screen.toml, then
    # sst2-confirm.toml; README "Screening study"): a 6-qubit amplitude head on the PCA of the embedding.
    "screened-sst2": dict(
        qubits=6,
        connectivity=1,
        reuploads=1,
        layers=2,
        measured=1,
        encoders=1,
        encoder_qubits=6,
        encoder_layers=2,
        encoder_connectivity=2,
        classes=2,
        amplitude_bias=1.0,
        reduction="pca",
        pca_components=0,
        module1="amplitude",
        skip=True,
    ),
    # The best of the linear-on-PCA family in the same confirmation stage (module 1 a learned projection of 32
    # principal components); measured beside screened-sst2 in the README.
    "screened-sst2-linear": dict(
        qubits=6,
        connectivity=2,
        reuploads=1,
        layers=2,
        measured=1,
        classes=2,
        amplitude_bias=0.0,
        reduction="pca",
        pca_components=32,
        module1="linear",
        skip=True,
    ),
    "tiny": dict(
        qubits=4,
        connectivity=1,
        reuploads=1,
        layers=1,
        measured=1,
        encoders=1,
        encoder_qubits=4,
        encoder_layers=1,
        encoder_connectivity=1,
        classes=2,
        **PAPER_MODULE1,
    ),
}


def ansatz_layer_size(qubits: int, connectivity: int) -> int:
    """Angles in one ansatz layer: Q*C CNOT-target rotations plus one RY column of Q."""
    return qubits * connectivity + qubits
