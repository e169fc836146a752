"""The work queue and its supervisor, with real threads: back-pressure, de-duplication, crashed
and stuck workers, the restart budget, and what stop hands back."""

import collections
import threading
import time
from pathlib import Path

from agent.pipeline import Pipeline


def test_back_pressure_blocks_submit_and_loses_nothing():
    release, seen = threading.Event(), []

    def handle(path):
        release.wait()
        seen.append(path)

    pipeline = Pipeline(handle, workers=1, capacity=2)
    pipeline.start()
    try:
        assert pipeline.submit(Path("0"))
        time.sleep(0.2)  # the worker holds "0"
        assert pipeline.submit(Path("1")) and pipeline.submit(Path("2"))
        assert pipeline.submit(Path("1"))  # already waiting: not queued twice
        assert not pipeline.submit(Path("3"), timeout=0.3)  # full: the producer waits
        release.set()
        assert pipeline.submit(Path("3"), timeout=5)
        assert pipeline.wait_idle(5)
    finally:
        pipeline.stop()
    assert seen == [Path(str(i)) for i in range(4)]


def test_crashed_worker_is_replaced_and_work_goes_on():
    troubles, seen, calls = [], [], collections.Counter()

    def handle(path):
        calls[path.name] += 1
        if path.name == "bad" or (path.name == "flaky" and calls["flaky"] == 1):
            raise RuntimeError("boom")
        seen.append(path.name)

    given_up = []
    pipeline = Pipeline(handle, workers=1, on_trouble=troubles.append, on_give_up=lambda path, why: given_up.append((path, why)))
    pipeline.start()
    try:
        for name in ("a", "bad", "b", "flaky", "c"):
            pipeline.submit(Path(name))
        deadline = time.monotonic() + 5
        while len(seen) < 4 and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.3)  # room for a wrong third try of "bad"
    finally:
        pipeline.stop()
    assert sorted(seen) == ["a", "b", "c", "flaky"]  # a passing crash heals on its second try
    assert calls["bad"] == 2 and calls["flaky"] == 2  # one more try each, never a loop
    assert len(troubles) == 3 and all("boom" in t for t in troubles)
    assert [t for t in troubles if "crashed on bad" in t][-1].endswith("trying it later")
    assert given_up == [(Path("bad"), "RuntimeError: boom")]  # the agent's retry-later takes it from here
    assert pipeline.failed is None


def test_stuck_worker_gets_a_replacement():
    unstick, troubles, seen = threading.Event(), [], []

    def handle(path):
        if path.name == "slow":
            unstick.wait(10)
        seen.append(path.name)

    pipeline = Pipeline(handle, workers=1, stuck_after_s=0.5, on_trouble=troubles.append)
    pipeline.start()
    try:
        pipeline.submit(Path("slow"))
        pipeline.submit(Path("next"))
        deadline = time.monotonic() + 5
        while "next" not in seen and time.monotonic() < deadline:
            time.sleep(0.05)
        assert "next" in seen  # done by the replacement while "slow" still hangs
        assert any("stuck on slow" in t for t in troubles)
    finally:
        unstick.set()
        pipeline.stop()
    assert seen == ["next", "slow"]


def test_restart_budget_ends_in_a_clear_failure():
    troubles = []

    def handle(path):
        raise OSError("always")

    pipeline = Pipeline(handle, workers=1, restarts=2, restart_window_s=60, on_trouble=troubles.append)
    pipeline.start()
    try:
        for i in range(5):
            pipeline.submit(Path(str(i)), timeout=1)
        deadline = time.monotonic() + 10
        while pipeline.failed is None and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        left = pipeline.stop()
    assert pipeline.failed and "giving up" in pipeline.failed
    assert left  # what was never started is handed back, to be kept for the next start


def test_stop_finishes_the_item_in_hand_and_returns_the_rest():
    started = threading.Event()
    done = []

    def handle(path):
        started.set()
        time.sleep(0.3)
        done.append(path.name)

    pipeline = Pipeline(handle, workers=1)
    pipeline.start()
    for name in "abcd":
        pipeline.submit(Path(name))
    started.wait(5)
    left = pipeline.stop()
    assert done == ["a"] and [p.name for p in left] == ["b", "c", "d"]


class OverlapRecorder:
    """A handler that notes any path handled by two workers at the same time."""

    def __init__(self, busy_s):
        self.busy_s = busy_s  # seconds per item, or a callable giving them
        self.active, self.overlaps, self.runs = set(), [], []
        self.lock = threading.Lock()

    def __call__(self, path):
        with self.lock:
            if path in self.active:
                self.overlaps.append(path)
            self.active.add(path)
        time.sleep(self.busy_s() if callable(self.busy_s) else self.busy_s)
        with self.lock:
            self.active.discard(path)
            self.runs.append(path)


def test_a_path_is_never_in_two_hands_at_once():
    handle = OverlapRecorder(0.2)

    pipeline = Pipeline(handle, workers=2)
    pipeline.start()
    try:
        pipeline.submit(Path("same"))
        time.sleep(0.05)
        pipeline.submit(Path("same"))  # in hand: queued again for after
        pipeline.submit(Path("same"))  # already queued again: not a third time
        assert pipeline.wait_idle(5)
    finally:
        pipeline.stop()
    assert handle.overlaps == [] and handle.runs == [Path("same"), Path("same")]


def test_no_path_in_two_hands_under_contention():
    """Three producers hammering 20 paths into a small queue (so they wait for room): a path
    queued by one producer while another waited must still never reach two workers at once."""
    import random

    handle = OverlapRecorder(lambda: random.random() * 0.002)

    pipeline = Pipeline(handle, workers=2, capacity=8)
    pipeline.start()

    def produce(seed):
        rng = random.Random(seed)
        for _ in range(5000):
            pipeline.submit(Path(f"/p/{rng.randrange(20)}"))

    producers = [threading.Thread(target=produce, args=(i,)) for i in range(3)]
    try:
        for t in producers:
            t.start()
        for t in producers:
            t.join()
        assert pipeline.wait_idle(10)
    finally:
        pipeline.stop()
    assert handle.overlaps == []
