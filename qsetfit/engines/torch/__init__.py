"""The torch engines: fused statevector (exact, autograd) and the noisy gate-by-gate engine.

The noisy engine runs a density matrix or trajectories.
"""
