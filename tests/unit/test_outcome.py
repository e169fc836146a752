"""The outcome fan-out and the action names (agent/outcome.py)."""

import logging

import pytest

from agent.outcome import ACTION_NAMES, Fanout, Outcome, action_name


def test_every_sink_gets_every_outcome_in_order_even_after_one_fails(caplog):
    seen: list[tuple[str, str]] = []

    def broken(outcome: Outcome) -> None:
        raise RuntimeError("notifier down")

    fanout = Fanout([lambda o: seen.append(("first", o.subject)), broken])
    fanout.add(lambda o: seen.append(("last", o.subject)))
    with caplog.at_level(logging.ERROR, logger="agent.outcome"):
        fanout(Outcome("/home/ana/a.png", "malign", "quarantine"))
        fanout(Outcome("screen:1", "malign", "blur", source="screen"))
    assert seen == [("first", "/home/ana/a.png"), ("last", "/home/ana/a.png"), ("first", "screen:1"), ("last", "screen:1")]
    assert sum("notifier down" in r.getMessage() or "failed" in r.getMessage() for r in caplog.records) == 2


def test_action_names_are_checked_where_they_come_from():
    assert ACTION_NAMES == ("none", "log", "quarantine", "blur")
    assert action_name("blur", "profiles.child.actions.screen") == "blur"
    with pytest.raises(ValueError, match="profiles.x.actions.folder: 'shred' is not one of none, log, quarantine, blur"):
        action_name("shred", "profiles.x.actions.folder")
