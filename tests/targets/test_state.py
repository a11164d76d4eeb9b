"""The reconciler's state survives restarts, refuses a worktree, and is replaced whole."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from reconciler.state import (
    HISTORY_LENGTH,
    HistoryEntry,
    ReconcilerState,
    StateError,
    StateStore,
    check_state_dir,
    default_state_dir,
    repo_id,
)
from tests.plan.gitrepo import init_repo


def test_round_trip_and_history_is_bounded(tmp_path: Path) -> None:
    store = StateStore(tmp_path / "s")
    state = ReconcilerState(source="/srv/shop.git", target="directory")
    state.set_condition("Ready", True, "Applied", "applied abc", "2026-12-01T00:00:00Z")
    state.set_condition("Ready", True, "Applied", "applied def", "2026-12-01T00:01:00Z")
    for number in range(HISTORY_LENGTH + 3):
        state.record_applied(HistoryEntry(f"r{number}", "2026-12-01T00:00:00Z", 0.5, 1))
    state.count("drift_corrected", 2)
    store.save(state)
    loaded = store.load()
    assert loaded == state
    ready = loaded.condition("Ready")
    assert ready is not None and ready.since == "2026-12-01T00:00:00Z"  # unchanged status
    assert [h.revision for h in loaded.history][:2] == [
        f"r{HISTORY_LENGTH + 2}",
        f"r{HISTORY_LENGTH + 1}",
    ]
    assert len(loaded.history) == HISTORY_LENGTH
    assert [p.name for p in (tmp_path / "s").iterdir()] == ["state.json"]


def test_missing_state_is_fresh_and_a_corrupt_one_is_a_clear_error(tmp_path: Path) -> None:
    store = StateStore(tmp_path)
    assert store.load() == ReconcilerState()
    store.path.write_text("{not json")
    with pytest.raises(StateError, match="not a meshd state file"):
        store.load()
    store.path.write_text(json.dumps({"schema": 99}))
    with pytest.raises(StateError, match="schema 99"):
        store.load()


def test_state_dir_inside_a_worktree_is_refused(tmp_path: Path) -> None:
    repo = init_repo(tmp_path / "repo")
    with pytest.raises(StateError, match="inside the Git worktree"):
        check_state_dir(repo / "state")
    check_state_dir(tmp_path / "elsewhere")


def test_default_state_dir_follows_xdg(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path))
    url = "https://git.example.com/team/shop.git"
    assert default_state_dir(url) == tmp_path / "meshd" / repo_id(url)
    assert repo_id(url).startswith("shop-") and repo_id(url) != repo_id(url + "x")
    assert os.sep not in repo_id("https://x/../../etc")
