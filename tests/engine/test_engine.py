"""The engine's contract: memoised queries, dependencies recorded as read, green reuse,
backdating, and the errors it raises on misuse."""

from __future__ import annotations

from collections.abc import Hashable

import pytest

from compiler.engine import CycleError, Engine

calls: list[str] = []


def word(db: Engine, name: Hashable) -> str:
    calls.append(f"word {name}")
    value: str = db.input("word", name)
    return value


def length(db: Engine, name: Hashable) -> int:
    calls.append(f"length {name}")
    return len(db.query(word, name))


def total(db: Engine) -> int:
    calls.append("total")
    return sum(db.query(length, name) for name in db.input("names", None))


def loop(db: Engine, depth: int) -> int:
    return db.query(loop, depth)


@pytest.fixture
def db() -> Engine:
    calls.clear()
    engine = Engine()
    engine.set_input("names", None, ("a", "b"))
    engine.set_input("word", "a", "one")
    engine.set_input("word", "b", "three")
    return engine


def test_a_query_runs_once_per_revision(db: Engine) -> None:
    assert db.query(total) == 8
    assert db.query(total) == 8
    assert calls == ["total", "length a", "word a", "length b", "word b"]
    assert db.stats.executed == 5


def test_only_queries_reading_a_changed_input_run_again(db: Engine) -> None:
    db.query(total)
    calls.clear()
    db.set_input("word", "b", "seven")
    assert db.query(total) == 8
    # word b ran and changed; length b ran and gave the same 5: total stays green
    assert calls == ["word b", "length b"]
    assert db.stats.executed == 2  # and nothing else was even visited


def test_backdating_keeps_the_old_object(db: Engine) -> None:
    db.set_input("word", "a", ["o", "n", "e"])
    first = db.query(word, "a")
    revision = db.revision
    db.set_input("word", "a", ["o", "n", "e"])  # equal: not even a new revision
    assert db.revision == revision
    db.set_input("word", "a", ["o", "n", "e", "!"])
    db.set_input("word", "a", ["o", "n", "e"])
    assert db.revision == revision + 1  # one revision for the batch of changes
    assert db.query(word, "a") is first


def test_a_changed_dependency_list_is_recorded_anew(db: Engine) -> None:
    assert db.query(total) == 8
    db.set_input("names", None, ("b",))
    assert db.query(total) == 5
    calls.clear()
    db.set_input("word", "a", "eleven")  # total no longer reads a
    assert db.query(total) == 5
    assert "total" not in calls


def test_a_removed_input_is_seen_as_changed(db: Engine) -> None:
    db.query(total)
    db.set_input("names", None, ("a",))
    db.remove_input("word", "b")
    assert db.query(total) == 3
    with pytest.raises(KeyError):
        db.query(word, "b")


def test_inputs_cannot_change_inside_a_query(db: Engine) -> None:
    def sneaky(db: Engine) -> None:
        db.set_input("word", "a", "x")

    with pytest.raises(RuntimeError, match="inputs cannot change"):
        db.query(sneaky)


def test_a_cycle_is_an_error_naming_the_query(db: Engine) -> None:
    with pytest.raises(CycleError, match="loop"):
        db.query(loop, 1)


def test_an_exception_leaves_no_memo_and_no_frame(db: Engine) -> None:
    def broken(db: Engine) -> int:
        db.input("word", "a")
        raise ValueError("boom")

    with pytest.raises(ValueError):
        db.query(broken)
    assert db.peek(broken) is None
    db.set_input("word", "a", "x")  # allowed: no query is running any more


def test_a_deep_change_reaches_every_reader_in_height_order(db: Engine) -> None:
    assert db.query(total) == 8
    calls.clear()
    db.set_input("word", "a", "four")  # length a: 3 -> 4, so total runs again, once
    assert db.query(total) == 9
    assert calls == ["word a", "length a", "total"]


def test_a_query_that_fails_while_settling_fails_again_when_asked(db: Engine) -> None:
    def first_letter(db: Engine) -> str:
        value: str = db.input("word", "a")[0]
        return value

    assert db.query(first_letter) == "o"
    db.set_input("word", "a", "")  # settling re-runs it: IndexError, kept for the caller
    assert db.query(length, "a") == 0
    with pytest.raises(IndexError):
        db.query(first_letter)


def test_collect_drops_what_this_revision_did_not_ask_for(db: Engine) -> None:
    db.query(total)
    db.set_input("names", None, ("a",))
    assert db.query(total) == 3
    assert db.collect() == 2  # length b and word b
    assert db.peek(length, "b") is None
    db.set_input("names", None, ("a", "b"))
    assert db.query(total) == 8
