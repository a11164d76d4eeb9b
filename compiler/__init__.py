"""meshc compiler: mesh intent files in, lint findings and mesh artifacts out.

Everything in this package is pure: no network, no cluster, no clock, no randomness.
The time and the rollout steps are passed in by the caller (see `compiler.api.compile`).
"""

from compiler.api import Compilation, compile_tree, load_tree

__all__ = ["Compilation", "compile_tree", "load_tree"]
