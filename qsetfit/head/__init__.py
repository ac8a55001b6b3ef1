"""The model core: head configuration and circuits, module 1 encoders, the quantum layer, the hybrid head."""
