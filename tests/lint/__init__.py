"""Tests of the lint engine: incremental linting."""
