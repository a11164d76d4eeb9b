"""Benchmarks: a synthetic mesh generator and the lint speed benchmark (run explicitly)."""
