"""The Faust app built from the settings."""

from __future__ import annotations

from pathlib import Path

from app.main import create_app
from app.settings import Settings


async def test_the_consumer_takes_its_fetch_wait_from_the_settings(tmp_path: Path) -> None:
    app = create_app(Settings(consumer_fetch_max_wait=0.02, data_dir=str(tmp_path)))
    thread = app.consumer._thread  # type: ignore[attr-defined]
    consumer = thread._create_worker_consumer(app.transport)
    # aiokafka hands this to its fetcher when the consumer starts.
    assert consumer._fetch_max_wait_ms == 20
