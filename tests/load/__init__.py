"""Loader and validator tests: bad input, discovery, configuration, fuzzing."""
