"""Checks of emitted objects against what the target will accept, apart from the backends.

A backend is a pure function of the compiled model; whether its output is accepted is
decided by the target's own published rules (today: the user's CustomResourceDefinitions
and their CEL rules, `crds.py`). Kept out of `compiler.lower` so that the emitters stay
emitters, and importing no backend (an import-linter contract) so that the check judges
the objects alone: the command line lowers, then verifies.
"""
