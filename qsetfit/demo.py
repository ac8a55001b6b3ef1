"""Smoke demo: embed a few sentences with the packaged MiniLM body and run an (untrained) paper head on them.

The Workflow issue turns this into the full train-and-compare demo.
"""

from __future__ import annotations

import time

import torch

from qsetfit.circuits import HeadConfig
from qsetfit.embeddings import embed
from qsetfit.head import HybridHead


def main() -> None:
    """Build the 10-qubit paper head, run it on the torch engine and print what it sees."""
    texts = ["A warm, funny and beautifully acted film.", "Dull, slow and far too long."]
    emb = torch.as_tensor(embed(texts, show_progress=False))
    config = HeadConfig.preset("paper-10q-single")
    head = HybridHead(config)
    start = time.perf_counter()
    with torch.no_grad():
        logits, _ = head(emb)
    took = time.perf_counter() - start
    counts = config.parameter_counts()
    print(f"head paper-10q-single: {counts['total']} parameters {counts}, circuit depth "
          f"{head.quantum.head_circuit.circuit.depth()}, engine torch, forward {took * 1000:.1f} ms")
    for text, p in zip(texts, torch.softmax(logits, dim=1)):
        print(f"  {text!r}: p = {[round(v, 3) for v in p.tolist()]} (untrained)")


if __name__ == "__main__":
    main()
