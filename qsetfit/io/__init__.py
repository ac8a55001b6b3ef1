"""Files: atomic writes, run directories and checkpoints (safetensors + JSON, never pickles)."""
