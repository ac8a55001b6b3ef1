"""Shared by the noisy torch engine's tests (test_noisy, test_density, test_trajectories): random noisy heads,
noise files, the matching Aer and torch profiles, and one forward/backward step."""

from __future__ import annotations

import numpy as np
import torch
from qiskit.circuit import ParameterVector, QuantumCircuit
from qiskit.quantum_info import SparsePauliOp

from qsetfit import HeadCircuit
from qsetfit.profiles import BackendProfile

# "u" is in the torch gate set, but Aer's runtime parameter binding rejects a parameterised u ("instruction
# param position out of range"), so the Aer comparison leaves it out; rx, rz and sx cover the complex path.
ONE_QUBIT = ["ry", "rx", "rz", "h", "sx", "x"]
# crx, swap: no noise by the profiles' gate lists. Aer's density-matrix method lacks crx and decomposes it into
# cx and rotations, whose cx then draws p2 (the torch engine follows the circuit's gate names), so it is left out.
TWO_QUBIT = ["cx", "cz", "ecr", "swap"]
# Tolerance for estimates against the exact value: Z = 5 standard errors, a false-failure rate below 6e-7 per
# comparison for a Gaussian estimate; every random draw below is seeded, so the tests never flake.
Z = 5.0


def noise_file(tmp_path, text, name="noise"):
    path = tmp_path / f"{name}.toml"
    path.write_text(text)
    return str(path)


def profile_pair(noise, **torch_fields):
    aer = BackendProfile(name="aer-ref", engine="aer", method="density_matrix", noise_model=noise,
                         density_matrix_max_qubits=16)
    ours = BackendProfile(name="torch-ref", engine="torch", noise_model=noise,
                          **({"method": "density_matrix"} | torch_fields))
    return aer, ours


def random_head(n, n_gates, seed, gates_1q=ONE_QUBIT, gates_2q=TWO_QUBIT):
    """A random circuit of the given gates, angles affine in 3 inputs and 4 weights, <Z> and <ZZ> read-outs."""
    rng = np.random.default_rng(seed)
    x, w = ParameterVector("x", 3), ParameterVector("w", 4)

    def angle():
        return rng.uniform(-2, 2) * x[rng.integers(3)] + rng.uniform(-2, 2) * w[rng.integers(4)] + rng.uniform(-1, 1)

    qc = QuantumCircuit(n)
    for i, p in enumerate([*x, *w]):  # every parameter occurs at least once
        qc.ry(p, i % n)
    for _ in range(n_gates):
        if n > 1 and rng.random() < 0.4:
            name = gates_2q[rng.integers(len(gates_2q))]
            a, b = rng.choice(n, 2, replace=False)
            fixed = {"cx": qc.cx, "cz": qc.cz, "ecr": qc.ecr, "swap": qc.swap}
            fixed.get(name, lambda a, b: qc.crx(angle(), a, b))(a, b)
        else:
            name, q = gates_1q[rng.integers(len(gates_1q))], int(rng.integers(n))
            if name == "u":
                qc.u(angle(), angle(), angle(), q)
            elif name in ("rx", "ry", "rz"):
                getattr(qc, name)(angle(), q)
            else:
                getattr(qc, name)(q)
    obs = [SparsePauliOp.from_sparse_list([("Z", [0], 1.0)], n),
           SparsePauliOp.from_sparse_list([("ZZ", [0, n - 1], 0.7), ("Z", [1 % n], -0.3)], n)]
    return HeadCircuit(qc, list(x), list(w), obs), rng.uniform(-1, 1, (4, 3)), rng.uniform(-np.pi, np.pi, 4)


def step(engine, x, w):
    xs, ws = torch.tensor(x, requires_grad=True), torch.tensor(w, requires_grad=True)
    out = engine(xs, ws)
    gx, gw = torch.autograd.grad((out * torch.tensor([1.0, -0.6])).sum(), (xs, ws))
    return out.detach().numpy(), gx.numpy(), gw.numpy()
