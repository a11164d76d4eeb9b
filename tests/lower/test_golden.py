"""Golden files: the complete lowering of bookinfo and of the rich fixture, one file per
emitted object kind (so a change shows up beside the lowering that made it)."""

from __future__ import annotations

import pytest

from tests.lower.support import BOOKINFO, RICH, check_golden, render_dir, stream_of

KINDS = (
    "PeerAuthentication",
    "AuthorizationPolicy",
    "DestinationRule",
    "Sidecar",
    "VirtualService",
    "NetworkPolicy",
)


def test_bookinfo_golden() -> None:
    check_golden("bookinfo.yaml", stream_of(render_dir(BOOKINFO)))


@pytest.mark.parametrize("kind", KINDS)
def test_rich_golden_per_kind(kind: str) -> None:
    text = stream_of(render_dir(RICH), kind)
    assert text, f"the rich fixture emits no {kind}"
    check_golden(f"rich/{kind.lower()}.yaml", text)


def test_rich_golden_at_a_later_rollout_step() -> None:
    """The catalog canary at step 2 (index 1: 50 %) changes only the VirtualService."""
    text = stream_of(render_dir(RICH, state={"shop/catalog": 1}), "VirtualService")
    check_golden("rich/virtualservice.step1.yaml", text)


def test_render_is_byte_identical_across_runs() -> None:
    first = stream_of(render_dir(RICH))
    second = stream_of(render_dir(RICH))
    assert first == second
    assert stream_of(render_dir(BOOKINFO)) == stream_of(render_dir(BOOKINFO))
