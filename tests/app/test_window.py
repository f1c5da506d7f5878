"""The in-flight window: capacity, back-pressure, per-key order, isolation."""

from __future__ import annotations

import asyncio
import random

import pytest

from app.window import InFlightWindow


async def test_capacity_bounds_concurrency_and_submit_waits_when_full() -> None:
    window = InFlightWindow(capacity=3)
    running = 0
    peak = 0
    release = asyncio.Event()

    async def work() -> None:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await release.wait()
        running -= 1

    for key in range(3):
        await window.submit(key, work)
    fourth = asyncio.create_task(window.submit(3, work))
    await asyncio.sleep(0.05)
    assert not fourth.done(), "a full window makes submit wait (back-pressure)"
    assert window.in_flight == 3
    release.set()
    await fourth
    await window.drain()
    assert peak == 3
    assert window.in_flight == 0


async def test_one_key_runs_in_arrival_order_others_do_not_wait() -> None:
    window = InFlightWindow(capacity=50)
    rng = random.Random(1)
    done: dict[str, list[int]] = {"a": [], "b": [], "slow": []}
    slow_started = asyncio.Event()

    def make(key: str, seq: int, delay: float):
        async def work() -> None:
            if key == "slow":
                slow_started.set()
            await asyncio.sleep(delay)
            done[key].append(seq)

        return work

    await window.submit("slow", make("slow", 0, 0.5))
    await slow_started.wait()
    for seq in range(10):
        # Later items of a key may be faster; they still finish after earlier ones.
        await window.submit("a", make("a", seq, rng.uniform(0, 0.02)))
        await window.submit("b", make("b", seq, rng.uniform(0, 0.02)))
    await asyncio.sleep(0.4)
    assert done["a"] == list(range(10)) and done["b"] == list(range(10))
    assert done["slow"] == [], "a and b did not wait for the slow key"
    await window.drain()
    assert done["slow"] == [0]


async def test_a_failing_piece_of_work_does_not_block_its_key() -> None:
    window = InFlightWindow(capacity=2)
    seen: list[int] = []

    async def boom() -> None:
        raise RuntimeError("bug")

    async def ok() -> None:
        seen.append(1)

    await window.submit("k", boom)
    await window.submit("k", ok)
    await window.drain()
    assert seen == [1]
    assert window.in_flight == 0


def test_capacity_must_be_positive() -> None:
    with pytest.raises(ValueError):
        InFlightWindow(capacity=0)


async def test_finish_waits_for_work_in_flight_within_the_grace() -> None:
    window = InFlightWindow(capacity=4)
    done: list[str] = []

    async def work(name: str, seconds: float) -> None:
        await asyncio.sleep(seconds)
        done.append(name)

    await window.submit("a", lambda: work("quick", 0.05))
    await window.submit("b", lambda: work("slow", 5))
    assert await window.finish(grace=0.5) == 1
    assert done == ["quick"]
    assert window.in_flight == 1, "work past the grace is left running, not cancelled"
    assert await InFlightWindow(capacity=1).finish(grace=0) == 0
