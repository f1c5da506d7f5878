"""The long-lived clients of a worker process, started and stopped with the app."""

from __future__ import annotations

from app.llm import LLMClient
from app.main import app
from app.settings import get_settings

#: One HTTP session to the model server per process.
llm_client = LLMClient(settings=get_settings())
app.add_dependency(llm_client)
