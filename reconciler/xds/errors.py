"""Errors the xds target reports to a user."""

from __future__ import annotations

from reconciler.errors import MeshdError


class XdsError(MeshdError):
    """The control plane cannot serve (its own certificate could not be issued)."""

    code = 1
