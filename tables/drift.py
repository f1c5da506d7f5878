"""The drift monitor's state: tumbling windows of features, and a baseline, per variant.

Both are keyed by the model variant (``name@version``), the key of the
``flowdesk.signals`` topic, so a variant's windows live on one partition. The keys
are JSON strings: a windowed table's changelog key is ``(key, (start, end))``,
which the raw bytes serializer of the other tables cannot write.
"""

from __future__ import annotations

from app.drift import empty_window
from app.main import app
from app.settings import get_settings

_settings = get_settings()

#: variant -> feature label counts (``app.drift.Window``), per tumbling window of
#: ``FLOWDESK_DRIFT_WINDOW`` seconds of the signals' timestamps. A few windows are
#: kept, so the one that just closed can still be read when the next one opens.
drift_windows = (
    app.Table(
        "drift_windows",
        key_type=str,
        default=empty_window,
        partitions=_settings.topic_partitions,
        help="Feature label counts per model variant and tumbling window.",
    )
    .tumbling(_settings.drift_window, expires=_settings.drift_window * 4)
    .relative_to_stream()
)

#: variant -> {"open": start of its newest window, "baseline": the window every
#: later one is compared with, "baseline_start": when that window began}.
drift_state = app.Table(
    "drift_state",
    key_type=str,
    partitions=_settings.topic_partitions,
    help="The drift monitor's open window and baseline per model variant.",
)
