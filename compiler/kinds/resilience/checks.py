"""Lint rules for this kind (see compiler/lint/registry.py for how a rule is written)."""
