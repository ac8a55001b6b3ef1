"""Engines execute a head circuit; they never define one. See ``registry`` for lookup by name."""
