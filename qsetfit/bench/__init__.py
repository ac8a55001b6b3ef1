"""Measurement: statistics, classical baselines, reproduction, screening, noise and energy benchmarks, plots."""
