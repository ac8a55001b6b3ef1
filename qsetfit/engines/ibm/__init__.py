"""IBM Quantum: the Runtime engine, its job ledger and credentials."""
