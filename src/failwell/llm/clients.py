"""Clients that turn prompts into completions, with the same accounting for all:
an OpenAI-compatible HTTP endpoint (vLLM, llama.cpp's server, Ollama, hosted APIs), a local
Hugging Face causal LM, or any Python callable.

A prompt is a string or a list of chat messages (``{"role", "content"}``); base models get
chat messages rendered as plain "User:/Assistant:" text. Every answer goes to an on-disk
cache as soon as it arrives, so re-running a probe costs nothing and an endpoint that dies
half-way loses none of what it already answered.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import sqlite3
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from failwell.errors import FailwellError, InputError, ModelError, require
from failwell.progress import Count

Prompt = str | list[dict[str, str]]


class EndpointError(FailwellError):
    """The model endpoint could not be reached or kept failing after the retries."""

    exit_code = 69  # EX_UNAVAILABLE: try again later; what was answered is cached


@dataclass
class Completion:
    text: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    latency_s: float = 0.0
    cached: bool = False

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def render(prompt: Prompt) -> str:
    """Chat messages as plain text for a base model; a string stays as it is."""
    if isinstance(prompt, str):
        return prompt
    lines = [f"{m['role'].capitalize()}: {m['content']}" for m in prompt]
    return "\n".join(lines) + "\nAssistant:"


class Cache:
    """Answers keyed by (client, prompt, settings) in one SQLite file."""

    def __init__(self, path: str | Path | None = None):
        default = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "failwell"
        self.path = Path(path) if path else default / "llm-cache.sqlite"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.conn = sqlite3.connect(self.path, check_same_thread=False)
        self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.execute("CREATE TABLE IF NOT EXISTS answers (key TEXT PRIMARY KEY, "
                          "answer TEXT NOT NULL)")

    @staticmethod
    def key(client: str, prompt: Prompt, settings: dict[str, Any]) -> str:
        text = json.dumps([client, prompt, settings], sort_keys=True, ensure_ascii=False)
        return hashlib.sha256(text.encode()).hexdigest()

    def get(self, key: str) -> Completion | None:
        row = self.conn.execute("SELECT answer FROM answers WHERE key = ?", (key,)).fetchone()
        return Completion(**json.loads(row[0]) | {"cached": True}) if row else None

    def put(self, key: str, completion: Completion) -> None:
        with self.conn:
            self.conn.execute("INSERT OR REPLACE INTO answers VALUES (?, ?)",
                              (key, json.dumps(completion.to_dict())))


class BaseClient:
    """Cache lookup and accounting around ``_complete`` (the part each client differs in)."""

    name = "client"

    def __init__(self, *, cache: Cache | None = None, max_tokens: int = 64):
        self.cache = cache
        self.max_tokens = max_tokens

    def settings(self, max_tokens: int) -> dict[str, Any]:
        return {"max_tokens": max_tokens, "temperature": 0}

    def complete(self, prompts: Sequence[Prompt], *, max_tokens: int | None = None,
                 progress: Count | None = None) -> list[Completion]:
        max_tokens = max_tokens or self.max_tokens
        keys = [Cache.key(self.name, p, self.settings(max_tokens)) for p in prompts]
        out: list[Completion | None] = [self.cache.get(k) if self.cache else None
                                        for k in keys]
        todo = [i for i, c in enumerate(out) if c is None]
        done = len(prompts) - len(todo)
        if progress:
            progress(done, len(prompts))

        def store(i: int, completion: Completion) -> None:
            nonlocal done
            out[i] = completion
            if self.cache:
                self.cache.put(keys[i], completion)
            done += 1
            if progress:
                progress(done, len(prompts))

        if todo:
            self._complete([prompts[i] for i in todo], todo, max_tokens, store)
        return out  # type: ignore[return-value]

    def _complete(self, prompts: list[Prompt], index: list[int], max_tokens: int,
                  store: Callable[[int, Completion], None]) -> None:
        raise NotImplementedError


class CallableClient(BaseClient):
    """Any ``fn(prompt_text) -> str``."""

    def __init__(self, fn: Callable[[str], str], *, name: str | None = None, **kwargs):
        super().__init__(**kwargs)
        self.fn = fn
        self.name = name or f"callable:{getattr(fn, '__module__', '')}." \
                            f"{getattr(fn, '__qualname__', type(fn).__name__)}"

    def _complete(self, prompts, index, max_tokens, store) -> None:
        for i, prompt in zip(index, prompts, strict=True):
            t0 = time.perf_counter()
            try:
                text = self.fn(render(prompt))
            except Exception as exc:  # the user's code: say where, keep what was answered
                raise ModelError(f"{self.name} raised {type(exc).__name__} on prompt {i + 1}: "
                                 f"{exc}") from exc
            if not isinstance(text, str):
                raise ModelError(f"{self.name} returned {type(text).__name__} for prompt "
                                 f"{i + 1}; it must return the answer as text.")
            store(i, Completion(text, len(render(prompt).split()), len(text.split()),
                                time.perf_counter() - t0))


def hf_folder(path: str | Path, *, purpose: str):
    """(folder, torch, transformers) for a local Hugging Face model folder, checked."""
    path = Path(path)
    if not (path / "config.json").is_file():
        raise InputError(f"No Hugging Face model folder at {path} (config.json missing).")
    torch = require("torch", extra="torch", purpose=purpose)
    transformers = require("transformers", extra="llm", purpose=purpose)
    transformers.utils.logging.disable_progress_bar()  # weight-loading bars, per load
    return path, torch, transformers


class HFClient(BaseClient):
    """A local Hugging Face causal LM folder; greedy decoding in batches."""

    def __init__(self, path: str | Path, *, batch_size: int = 32, device: str | None = None,
                 **kwargs):
        super().__init__(**kwargs)
        path, torch, transformers = hf_folder(path, purpose="Local Hugging Face models")
        self.torch = torch
        self.tokenizer = transformers.AutoTokenizer.from_pretrained(path)
        self.tokenizer.padding_side = "left"
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.model = transformers.AutoModelForCausalLM.from_pretrained(path).to(
            self.device).eval()
        self.batch_size = batch_size
        self.name = f"hf:{path.resolve()}"
        self.limit = getattr(self.model.config, "n_positions", None) or getattr(
            self.model.config, "max_position_embeddings", 2048)

    def _complete(self, prompts, index, max_tokens, store) -> None:
        texts = [render(p) for p in prompts]
        for start in range(0, len(texts), self.batch_size):
            chunk = texts[start:start + self.batch_size]
            t0 = time.perf_counter()
            answers = self.generate(chunk, max_tokens)
            each = (time.perf_counter() - t0) / len(chunk)
            for offset, (text, n_in, n_out) in enumerate(answers):
                store(index[start + offset], Completion(text, n_in, n_out, each))

    def generate(self, texts: list[str], max_tokens: int) -> list[tuple[str, int, int]]:
        """(answer, prompt tokens, completion tokens) per text."""
        torch = self.torch
        enc = self.tokenizer(texts, return_tensors="pt", padding=True).to(self.device)
        width = enc["input_ids"].shape[1]
        if width + max_tokens > self.limit:
            raise InputError(f"a prompt of {width} tokens plus {max_tokens} to generate is "
                             f"over the model's context of {self.limit} tokens.")
        with torch.no_grad():
            out = self.model.generate(**enc, max_new_tokens=max_tokens, do_sample=False,
                                      pad_token_id=self.tokenizer.pad_token_id,
                                      eos_token_id=self.tokenizer.eos_token_id)
        results = []
        for row, mask in zip(out, enc["attention_mask"], strict=True):
            new = row[width:]
            new = new[new != self.tokenizer.pad_token_id]
            text = self.tokenizer.decode(new, skip_special_tokens=True)
            results.append((text, int(mask.sum()), len(new)))
        return results


class OpenAIClient(BaseClient):
    """An OpenAI-compatible endpoint: ``/chat/completions`` (default) or ``/completions``
    for base models. Requests run concurrently up to ``concurrency``; connection errors,
    timeouts, 429 and 5xx are retried with exponential backoff."""

    def __init__(self, base_url: str | None = None, *, model: str | None = None,
                 api_key: str | None = None, mode: str = "chat", concurrency: int = 8,
                 timeout: float = 60.0, retries: int = 3, backoff: float = 0.5, **kwargs):
        super().__init__(**kwargs)
        base_url = base_url or os.environ.get("OPENAI_BASE_URL")
        if not base_url:
            raise InputError("give --openai-base-url (or set OPENAI_BASE_URL), e.g. "
                             "http://127.0.0.1:8000/v1.")
        if mode not in ("chat", "completions"):
            raise InputError(f"mode {mode!r}: use chat or completions.")
        if concurrency < 1 or retries < 0 or timeout <= 0:
            raise InputError("concurrency must be >= 1, retries >= 0 and timeout > 0.")
        self.base_url = base_url.rstrip("/")
        self.model = model or os.environ.get("OPENAI_MODEL", "default")
        self.api_key = api_key or os.environ.get("OPENAI_API_KEY", "")
        self.mode, self.concurrency = mode, concurrency
        self.timeout, self.retries, self.backoff = timeout, retries, backoff
        self.name = f"openai:{self.base_url}:{self.model}:{mode}"

    def _complete(self, prompts, index, max_tokens, store) -> None:
        asyncio.run(self._run(prompts, index, max_tokens, store))

    async def _run(self, prompts, index, max_tokens, store) -> None:
        httpx = require("httpx", extra="llm", purpose="The OpenAI-compatible client")
        limit = asyncio.Semaphore(self.concurrency)
        headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
        limits = httpx.Limits(max_connections=self.concurrency)
        async with httpx.AsyncClient(timeout=self.timeout, headers=headers,
                                     limits=limits) as http:

            async def one(i: int, prompt: Prompt) -> None:
                async with limit:
                    store(i, await self._request(http, httpx, prompt, max_tokens))

            tasks = [asyncio.create_task(one(i, p))
                     for i, p in zip(index, prompts, strict=True)]
            try:
                await asyncio.gather(*tasks)
            except BaseException:
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
                raise

    async def _request(self, http, httpx, prompt: Prompt, max_tokens: int) -> Completion:
        if self.mode == "chat":
            messages = [{"role": "user", "content": prompt}] if isinstance(prompt, str) \
                else prompt
            url, body = f"{self.base_url}/chat/completions", {"messages": messages}
        else:
            url, body = f"{self.base_url}/completions", {"prompt": render(prompt)}
        body |= {"model": self.model, "max_tokens": max_tokens, "temperature": 0}
        problem = ""
        for attempt in range(self.retries + 1):
            if attempt:
                await asyncio.sleep(self.backoff * 2 ** (attempt - 1))
            t0 = time.perf_counter()
            try:
                response = await http.post(url, json=body)
            except httpx.HTTPError as exc:
                problem = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
                continue
            if response.status_code == 429 or response.status_code >= 500:
                problem = f"HTTP {response.status_code}"
                continue
            if response.status_code >= 400:
                raise EndpointError(f"{url} refused the request: HTTP "
                                    f"{response.status_code} {response.text[:200]}")
            return _parse(response, time.perf_counter() - t0, url)
        raise EndpointError(f"{url} did not answer after {self.retries + 1} attempt(s) "
                            f"({problem}). Answers received so far are cached; re-run to "
                            "continue.")


def _parse(response, latency: float, url: str) -> Completion:
    try:
        data = response.json()
        choice = data["choices"][0]
        text = choice["message"]["content"] if "message" in choice else choice["text"]
    except (ValueError, KeyError, IndexError, TypeError):
        raise EndpointError(f"{url} answered something that is not an OpenAI-style "
                            f"completion: {response.text[:200]}") from None
    usage = data.get("usage") or {}
    return Completion(text or "", int(usage.get("prompt_tokens", 0)),
                      int(usage.get("completion_tokens", 0)), latency)


def make_client(*, openai_base_url: str | None = None, hf_model: Path | None = None,
                callable_spec: str | None = None, cache: Cache | None = None,
                **options) -> BaseClient:
    """One client from the CLI's mutually exclusive options."""
    given = [x for x in (openai_base_url, hf_model, callable_spec) if x]
    if len(given) != 1:
        raise InputError("give exactly one of --openai-base-url, --hf-model or --callable.")
    if hf_model:
        return HFClient(hf_model, cache=cache)
    if callable_spec:
        import importlib

        module, _, attr = callable_spec.partition(":")
        try:
            fn = getattr(importlib.import_module(module), attr)
        except (ImportError, AttributeError, ValueError) as exc:
            raise InputError(f"Cannot import {callable_spec!r}: {exc}") from None
        return CallableClient(fn, name=f"callable:{callable_spec}", cache=cache)
    return OpenAIClient(openai_base_url, cache=cache, **options)
