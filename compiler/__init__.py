"""meshc compiler: mesh intent files in, lint findings and mesh artifacts out.

Everything in this package is pure: no network, no cluster, no clock, no randomness.
The time and the rollout steps are passed in by the caller (see `compiler.api.compile`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from compiler.api import Compilation, compile_tree, load_tree

__all__ = ["Compilation", "compile_tree", "load_tree"]


def __getattr__(name: str) -> Any:
    """Import the API on first use, so `import compiler.cli` stays cheap (CLI start-up)."""
    if name in __all__:
        from compiler import api

        return getattr(api, name)
    raise AttributeError(f"module 'compiler' has no attribute {name!r}")
