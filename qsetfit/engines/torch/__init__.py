"""The torch engines: fused statevector (exact, autograd) and the noisy gate-by-gate engine (density matrix, trajectories)."""
