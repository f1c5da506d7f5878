"""The in-memory table store, keeping its standby partitions and the offsets it holds.

Faust's memory store drops every key of a partition it does not own actively once a
recovery completes, standby partitions included, and reports no offset for any
partition. So a worker taking a partition over re-reads that table's changelog from its
start, although it had been applying the same changelog as a standby until then: on a
long-lived cluster that read is the longest part of a takeover.

This store keeps the keys of its standby partitions as well, and remembers per changelog
partition the offset up to which its data is complete: the last changelog record it
applied, or the last one written for it (what Faust records as the persisted offset, as
the RocksDB store does). Recovery then reads only what came after. A partition neither
active nor standby after a recovery loses its keys and its offset, so if it comes back
its changelog is read from the start, as before. The offsets live in memory with the
data: a restarted worker has neither and reads everything, which is right.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from faust.stores import memory
from faust.types import TP, EventT

__all__ = ["URL_SCHEME", "MemoryStore", "register"]

#: The store URL scheme (``FLOWDESK_TABLE_STORE=memory`` selects it).
URL_SCHEME = "flowdesk-memory"


class MemoryStore(memory.Store):
    """Faust's memory store, keeping standby partitions and the offsets it holds."""

    def __post_init__(self) -> None:
        super().__post_init__()
        #: changelog partition -> the offset up to which the data here is complete
        self._offsets: dict[TP, int] = {}

    def apply_changelog_batch(
        self,
        batch: Iterable[EventT],
        to_key: Callable[[Any], Any],
        to_value: Callable[[Any], Any],
    ) -> None:
        events = list(batch)
        super().apply_changelog_batch(events, to_key, to_value)
        for event in events:
            message = event.message
            tp = TP(message.topic, message.partition)
            if message.offset > self._offsets.get(tp, -1):
                self._offsets[tp] = message.offset

    def persisted_offset(self, tp: TP) -> int | None:
        return self._offsets.get(tp)

    def set_persisted_offset(self, tp: TP, offset: int) -> None:
        if offset > self._offsets.get(tp, -1):
            self._offsets[tp] = offset

    async def on_recovery_completed(self, active_tps: set[TP], standby_tps: set[TP]) -> None:
        kept = active_tps | standby_tps
        partitions = {tp.partition for tp in kept}
        dropped = [k for k, p in self._key_partition.items() if p not in partitions]
        for key in dropped:
            self.data.pop(key, None)
            self._key_partition.pop(key, None)
        for tp in [tp for tp in self._offsets if tp not in kept]:
            del self._offsets[tp]


def register() -> str:
    """Make ``URL_SCHEME://`` name this store for Faust; returns the store URL."""
    from faust.stores import STORES

    STORES.aliases[URL_SCHEME] = f"{__name__}:MemoryStore"
    return f"{URL_SCHEME}://"
