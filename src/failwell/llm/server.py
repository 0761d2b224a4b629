"""An OpenAI-compatible server for a local Hugging Face model (``failwell llm serve``).

Enough of the API for probes and for testing the HTTP client on loopback: ``/v1/models``,
``/v1/completions`` and ``/v1/chat/completions``, greedy decoding, token usage. Generation
is serialized with a lock: one model, one CPU. (No ``from __future__ import annotations``
here: FastAPI must see the request models, defined inside ``make_app``, as classes.)
"""


import threading
import time
import uuid
from typing import Any

from failwell.errors import FailwellError, require
from failwell.llm.clients import HFClient, render


def make_app(client: HFClient, model_name: str = "failwell-local"):
    fastapi = require("fastapi", extra="llm", purpose="The OpenAI-compatible server")
    pydantic = require("pydantic", extra="llm", purpose="The OpenAI-compatible server")

    class CompletionRequest(pydantic.BaseModel):
        prompt: str
        model: str = model_name
        max_tokens: int = pydantic.Field(default=64, ge=1, le=1024)
        temperature: float = 0.0

    class Message(pydantic.BaseModel):
        role: str
        content: str

    class ChatRequest(pydantic.BaseModel):
        messages: list[Message] = pydantic.Field(min_length=1)
        model: str = model_name
        max_tokens: int = pydantic.Field(default=64, ge=1, le=1024)
        temperature: float = 0.0

    app = fastapi.FastAPI(title="failwell local model", version="1")
    lock = threading.Lock()

    def generate(text: str, max_tokens: int) -> tuple[str, int, int]:
        with lock:
            try:
                return client.generate([text], max_tokens)[0]
            except FailwellError as exc:  # e.g. a prompt over the context length
                raise fastapi.HTTPException(400, str(exc)) from None

    def envelope(kind: str, choice: dict[str, Any], n_in: int, n_out: int) -> dict:
        return {"id": f"{kind}-{uuid.uuid4().hex[:12]}", "object": kind,
                "created": int(time.time()), "model": model_name,
                "choices": [{"index": 0, "finish_reason": "stop", **choice}],
                "usage": {"prompt_tokens": n_in, "completion_tokens": n_out,
                          "total_tokens": n_in + n_out}}

    @app.get("/v1/models")
    def models() -> dict:
        return {"object": "list", "data": [{"id": model_name, "object": "model"}]}

    @app.post("/v1/completions")
    def completions(request: CompletionRequest) -> dict:
        text, n_in, n_out = generate(request.prompt, request.max_tokens)
        return envelope("text_completion", {"text": text}, n_in, n_out)

    @app.post("/v1/chat/completions")
    def chat(request: ChatRequest) -> dict:
        prompt = render([m.model_dump() for m in request.messages])
        text, n_in, n_out = generate(prompt, request.max_tokens)
        return envelope("chat.completion",
                        {"message": {"role": "assistant", "content": text}}, n_in, n_out)

    return app


def serve(client: HFClient, *, host: str = "127.0.0.1", port: int = 8000,
          model_name: str = "failwell-local") -> None:
    uvicorn = require("uvicorn", extra="llm", purpose="The OpenAI-compatible server")
    uvicorn.run(make_app(client, model_name), host=host, port=port, log_level="warning")
