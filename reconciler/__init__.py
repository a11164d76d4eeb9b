"""meshd: the reconciler — effects around the pure compiler (source, targets, CA, loop)."""
