"""The model definitions, on every worker: a global table fed from ``support.models``."""

from __future__ import annotations

from app.main import app

#: ``name@version`` -> the definition (``app.catalog.ModelDefinition`` as a dict).
#: One partition and a recovery buffer of one: Faust's advice for a global table
#: read by several workers, which can otherwise loop in recovery.
models = app.GlobalTable(
    "models",
    key_type=bytes,
    partitions=1,
    recovery_buffer_size=1,
    help="Model variants, their weights and parameters, from support.models.",
)
