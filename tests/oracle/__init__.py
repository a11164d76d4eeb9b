"""Independent oracles that property tests compare meshc's output against."""
