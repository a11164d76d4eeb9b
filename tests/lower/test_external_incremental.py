"""Externals in the incremental engine: editing an External, or a caller's calls to one,
through one session gives exactly what a fresh compile gives (objects, findings, meaning),
and an edit to one External re-lowers only what reads it."""

from __future__ import annotations

from typing import Any

from compiler.api import Compilation, Session, compile_tree
from compiler.artifacts import canonical_json
from compiler.load.discover import PolicyTree
from compiler.lower import lower
from compiler.plan.meaning import summarise
from tests.helpers import NOW
from tests.lower.test_network_default_deny import MESH, SHOP


def observed(compilation: Compilation) -> tuple[Any, ...]:
    findings = [(d.code, d.span, d.message) for d in compilation.diagnostics]
    objects = [(str(key), canonical_json(obj)) for key, obj in lower(compilation)]
    return findings, objects, summarise(compilation)


def files(shop: str) -> dict[str, bytes]:
    return {"mesh.yaml": MESH.encode(), "shop.yaml": shop.encode()}


EDITS = [
    ("[api.stripe.com]", "[api.stripe.com, files.stripe.com]"),  # a new host
    ("{name: https, port: 443, protocol: https}]", "{name: https, port: 8443, protocol: https}]"),
    ("calls: [cart, ledger]", "calls: [cart, ledger, stripe]"),  # a new caller
    ("addresses: [10.20.0.0/16]", "addresses: [10.20.0.5]"),
]


def test_external_edits_through_one_session_equal_fresh_compiles() -> None:
    session = Session()
    shop = SHOP
    first = compile_tree(PolicyTree(files=files(shop)), now=NOW, session=session)
    assert first.ok
    lower(first)
    for old, new in EDITS:
        assert old in shop, old
        shop = shop.replace(old, new, 1)
        again = compile_tree(PolicyTree(files=files(shop)), now=NOW, session=session)
        fresh = compile_tree(PolicyTree(files=files(shop)), now=NOW)
        assert again.ok and observed(again) == observed(fresh), (old, new)


def test_the_service_entry_and_sidecars_follow_each_edit() -> None:
    session = Session()
    base = compile_tree(PolicyTree(files=files(SHOP)), now=NOW, session=session)
    before = {str(k): obj for k, obj in lower(base)}
    head = SHOP.replace("calls: [cart, ledger]", "calls: [cart, ledger, stripe]", 1)
    after_compile = compile_tree(PolicyTree(files=files(head)), now=NOW, session=session)
    after = {str(k): obj for k, obj in lower(after_compile)}
    changed = sorted(k for k in after if canonical_json(after[k]) != canonical_json(before.get(k)))
    assert changed == [
        "NetworkPolicy.networking.k8s.io/shop/checkout",
        "Sidecar.networking.istio.io/shop/checkout",
    ]
