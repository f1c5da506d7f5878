"""Reading output partitions back after a takeover (app.published), without Kafka:
each partition read once per rebalance, shared by concurrent callers, read together."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Hashable

import pytest
from aiokafka.partitioner import DefaultPartitioner
from hypothesis import given
from hypothesis import strategies as st

from app.published import Partition, ReadBack, output_partitions


class Reads(ReadBack):
    """A read-back whose partitions hold ``data``, each read taking ``delay`` seconds."""

    def __init__(self, data: dict[Partition, set[str]], *, delay: float = 0.05) -> None:
        super().__init__(bootstrap="unused:9092")
        self.data = data
        self.delay = delay
        self.batches: list[list[Partition]] = []
        self.fail: Exception | None = None

    async def _read(
        self,
        partitions: list[Partition],
        *,
        since_ms: int,
        done: Callable[[Partition, set[Hashable]], None],
    ) -> int:
        self.batches.append(partitions)
        # What is on the partitions when the read starts.
        found: dict[Partition, set[Hashable]] = {
            tp: set(self.data.get(tp, ())) for tp in partitions
        }
        await asyncio.sleep(self.delay)
        if self.fail is not None:
            raise self.fail
        for tp in partitions:
            done(tp, found[tp])
        return sum(len(keys) for keys in found.values())


async def test_concurrent_look_ups_of_a_partition_share_one_read() -> None:
    reads = Reads({("out", 1): {"q-1"}})
    found = await asyncio.gather(*(reads.keys("out", 1, since=0) for _ in range(20)))
    assert all(keys == {"q-1"} for keys in found)
    assert reads.batches == [[("out", 1)]]
    assert await reads.keys("out", 1, since=0) == {"q-1"}
    assert len(reads.batches) == 1, "kept until the next rebalance"
    reads.forget()
    await reads.keys("out", 1, since=0)
    assert len(reads.batches) == 2, "read again after a rebalance"


async def test_partitions_prefetched_together_are_read_in_one_go() -> None:
    reads = Reads({("out", 0): {"a"}, ("out", 3): {"b"}, ("esc", 3): {"c"}})
    wanted = [("out", 0), ("out", 3), ("esc", 3), ("out", 0)]
    reads.prefetch(wanted, since=0)
    reads.prefetch(wanted, since=0)  # under way already: not read twice
    keys = await asyncio.gather(*(reads.keys(t, p, since=0) for t, p in wanted))
    assert keys == [{"a"}, {"b"}, {"c"}, {"a"}]
    assert reads.batches == [[("out", 0), ("out", 3), ("esc", 3)]]
    assert reads.reads == 3


async def test_a_failed_read_reaches_every_caller_and_the_next_call_reads_again() -> None:
    reads = Reads({("out", 2): {"q"}})
    reads.fail = TimeoutError("broker away")
    results = await asyncio.gather(
        reads.keys("out", 2, since=0), reads.keys("out", 2, since=0), return_exceptions=True
    )
    assert all(isinstance(r, TimeoutError) for r in results)
    reads.fail = None
    assert await reads.keys("out", 2, since=0) == {"q"}
    assert len(reads.batches) == 2


async def test_a_caller_cancelled_leaves_the_read_to_the_others() -> None:
    reads = Reads({("out", 5): {"q"}}, delay=0.2)
    first = asyncio.create_task(reads.keys("out", 5, since=0))
    second = asyncio.create_task(reads.keys("out", 5, since=0))
    await asyncio.sleep(0.05)
    first.cancel()
    assert await second == {"q"}
    assert len(reads.batches) == 1


async def test_a_read_under_way_at_a_rebalance_is_not_kept() -> None:
    reads = Reads({("out", 1): {"old"}}, delay=0.1)
    under_way = asyncio.create_task(reads.keys("out", 1, since=0))
    await asyncio.sleep(0.01)
    reads.forget()
    reads.data[("out", 1)] = {"old", "new"}
    assert await under_way == {"old"}, "those waiting get the read they waited for"
    assert await reads.keys("out", 1, since=0) == {"old", "new"}


def test_the_limits_are_checked() -> None:
    with pytest.raises(ValueError):
        ReadBack(bootstrap="b", lookback=-1)
    with pytest.raises(ValueError):
        ReadBack(bootstrap="b", max_records=0)


@given(
    key=st.binary(min_size=0, max_size=64),
    source=st.integers(1, 64),
    counts=st.lists(st.integers(1, 64), min_size=1, max_size=4),
)
def test_an_outcome_goes_to_one_of_the_output_partitions_of_its_source(
    key: bytes, source: int, counts: list[int]
) -> None:
    partitioner = DefaultPartitioner()
    topics = {f"out-{n}": count for n, count in enumerate(counts)}
    on_source = partitioner(key, list(range(source)), list(range(source)))
    wanted = set(output_partitions(on_source, source_partitions=source, topics=topics))
    for topic, count in topics.items():
        assert (topic, partitioner(key, list(range(count)), list(range(count)))) in wanted
        if count == source:
            assert [p for t, p in wanted if t == topic] == [on_source]
