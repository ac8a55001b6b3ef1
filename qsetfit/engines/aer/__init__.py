"""The Aer engines: EstimatorQNN over qiskit-aer (exact, shots, noise), batched gradients, Aer noise models."""
