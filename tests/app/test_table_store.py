"""The memory store that keeps its standby partitions and the offsets it holds."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import faust
import pytest
from faust.types import TP
from hypothesis import given
from hypothesis import strategies as st

from app.table_store import URL_SCHEME, MemoryStore, register

CHANGELOG = "t-orders-changelog"


def event(partition: int, offset: int, key: str, value: str | None) -> Any:
    """A changelog record as Faust's recovery hands it to ``apply_changelog_batch``."""
    raw = value.encode() if value is not None else None
    message = SimpleNamespace(
        topic=CHANGELOG, partition=partition, offset=offset, key=key.encode(), value=raw
    )
    return SimpleNamespace(key=key, value=value, message=message)


@pytest.fixture
def store() -> MemoryStore:
    app = faust.App("t-store", store=register(), autodiscover=False)
    table = app.Table("orders", partitions=4)
    data = table.data
    assert isinstance(data, MemoryStore), "the registered scheme names this store"
    return data


def apply(store: MemoryStore, *events: Any) -> None:
    store.apply_changelog_batch(list(events), to_key=lambda k: k, to_value=lambda v: v)


def test_the_scheme_is_registered_with_faust() -> None:
    from faust.stores import by_url

    assert register() == f"{URL_SCHEME}://"
    assert by_url(f"{URL_SCHEME}://") is MemoryStore


def test_offsets_follow_the_changelog_applied_and_the_records_written(store) -> None:
    tp0, tp1 = TP(CHANGELOG, 0), TP(CHANGELOG, 1)
    assert store.persisted_offset(tp0) is None, "nothing held: read from the start"
    apply(store, event(0, 5, "a", "1"), event(0, 7, "b", "2"), event(1, 3, "c", "3"))
    assert store.persisted_offset(tp0) == 7 and store.persisted_offset(tp1) == 3
    store.set_persisted_offset(tp0, 9)  # a record this worker wrote as the active owner
    assert store.persisted_offset(tp0) == 9
    store.set_persisted_offset(tp0, 4)  # an older acknowledgement arriving late
    apply(store, event(0, 6, "a", "1"))  # a record read again
    assert store.persisted_offset(tp0) == 9, "the offset never goes back"


async def test_standby_partitions_keep_their_keys_and_offsets(store) -> None:
    apply(
        store,
        event(0, 1, "active", "1"),
        event(1, 1, "standby", "2"),
        event(2, 1, "gone", "3"),
    )
    await store.on_recovery_completed({TP(CHANGELOG, 0)}, {TP(CHANGELOG, 1)})
    assert dict(store.data) == {"active": "1", "standby": "2"}
    assert store.persisted_offset(TP(CHANGELOG, 1)) == 1
    assert store.persisted_offset(TP(CHANGELOG, 2)) is None, (
        "a partition no longer held is read from the start if it comes back"
    )


async def test_faust_s_own_memory_store_drops_standby_keys() -> None:
    """Why this store exists: Faust's keeps only the active partitions' keys."""
    app = faust.App("t-stock", store="memory://", autodiscover=False)
    data = app.Table("orders", partitions=4).data
    assert not isinstance(data, MemoryStore)
    apply(data, event(0, 1, "active", "1"), event(1, 1, "standby", "2"))  # type: ignore[arg-type]
    await data.on_recovery_completed({TP(CHANGELOG, 0)}, {TP(CHANGELOG, 1)})
    assert dict(data.data) == {"active": "1"}
    assert data.persisted_offset(TP(CHANGELOG, 0)) is None


@given(
    st.lists(
        st.tuples(
            st.sampled_from(["a", "b", "c", "d", "e", "f"]),
            # None deletes; Faust's batch also deletes a key set to a falsy value in
            # the batch that deleted it, and flowdesk's values are never falsy.
            st.one_of(st.none(), st.text(min_size=1, max_size=3)),
        ),
        max_size=40,
    ),
    st.integers(0, 40),
)
def test_resuming_from_the_offset_held_gives_what_reading_from_the_start_gives(
    records: list[tuple[str, str | None]], cut: int
) -> None:
    """A standby that applied a prefix of the changelog and then reads on from the
    offset it holds (the record at that offset again, as Faust seeks) ends where a
    store reading the whole changelog ends."""
    offsets = [0, 0, 0, 0]
    log = []
    for key, value in records:
        partition = ord(key) % 4  # a key has one partition
        log.append(event(partition, offsets[partition], key, value))
        offsets[partition] += 1
    app = faust.App("t-prop", store=register(), autodiscover=False)
    whole = app.Table("whole", partitions=4).data
    resumed = app.Table("resumed", partitions=4).data
    apply(whole, *log)
    head = log[:cut]
    apply(resumed, *head)
    for partition in range(4):
        held = resumed.persisted_offset(TP(CHANGELOG, partition))
        start = -1 if held is None else held
        apply(
            resumed,
            *[e for e in log if e.message.partition == partition and e.message.offset >= start],
        )
    assert dict(resumed.data) == dict(whole.data)
