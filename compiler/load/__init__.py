"""Stage 1: files to documents with source spans."""

from compiler.load.discover import PolicyTree, discover_tree
from compiler.load.documents import Document, classify_documents
from compiler.load.yamlnodes import ParsedFile, Positions, parse_source

__all__ = [
    "Document",
    "ParsedFile",
    "PolicyTree",
    "Positions",
    "classify_documents",
    "discover_tree",
    "parse_source",
]
