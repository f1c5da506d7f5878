"""OpenAI-compatible model servers for flowdesk: the real small LLM and a simulator.

``run_llama`` serves a GGUF model through llama.cpp; ``run_sim`` and ``SimServer``
serve the simulator, whose latency and faults are set per run for load and fault
tests. Importing this package does not load llama.cpp.
"""

from app.modelserver.llama import LlamaServer, ModelNotFoundError, default_model_path, run_llama
from app.modelserver.sim import Latency, SimConfig, SimServer, make_app, parse_latency, run_sim

__all__ = [
    "Latency",
    "LlamaServer",
    "ModelNotFoundError",
    "SimConfig",
    "SimServer",
    "default_model_path",
    "make_app",
    "parse_latency",
    "run_llama",
    "run_sim",
]
