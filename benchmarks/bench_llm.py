"""LLM probe client throughput and demo-model training time.

    python benchmarks/bench_llm.py

1. Training the demo model (GPT-2 style, d2p + p2d facts) with the demo settings
   (target: under 5 minutes on this 2-core CPU).
2. 240 completion requests to the OpenAI-compatible server on loopback serving that model:
   failwell's ``OpenAIClient`` (cache off, 8 in flight) against a plain ``httpx.AsyncClient``
   sending the same requests with the same limit. Runs alternate, three of each; the ratio
   of median wall times is reported (target: failwell within 1.5x).
"""

from __future__ import annotations

import asyncio
import socket
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import uvicorn

from failwell.llm.clients import HFClient, OpenAIClient
from failwell.llm.reversal import load_pairs
from failwell.llm.server import make_app
from failwell.llm.tinylm import find_experiment, train_reversal_model

REQUESTS, CONCURRENCY, MAX_TOKENS, REPEATS = 240, 8, 12, 3


async def plain(url: str, prompts: list[str]) -> None:
    limit = asyncio.Semaphore(CONCURRENCY)
    async with httpx.AsyncClient(timeout=60,
                                 limits=httpx.Limits(max_connections=CONCURRENCY)) as http:
        async def one(prompt: str) -> None:
            async with limit:
                r = await http.post(f"{url}/completions", json={
                    "model": "default", "prompt": prompt, "max_tokens": MAX_TOKENS,
                    "temperature": 0})
                r.raise_for_status()
                r.json()["choices"][0]["text"]

        await asyncio.gather(*(one(p) for p in prompts))


def main() -> None:
    data = find_experiment()
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        model = train_reversal_model(data, Path(tmp) / "model", size="demo")
        trained = time.perf_counter() - t0
        print(f"demo model trained in {trained:.0f} s (target < 300 s)")
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        server = uvicorn.Server(uvicorn.Config(make_app(HFClient(model)), host="127.0.0.1",
                                               port=port, log_level="warning"))
        threading.Thread(target=server.run, daemon=True).start()
        while not server.started:
            time.sleep(0.05)
        url = f"http://127.0.0.1:{port}/v1"
        questions = load_pairs(data / "d2p_prompts_test.jsonl")
        prompts = [questions[i % len(questions)].prompt + f" ({i})" for i in range(REQUESTS)]
        client = OpenAIClient(url, mode="completions", concurrency=CONCURRENCY)
        ours, theirs = [], []
        for _ in range(REPEATS):
            t0 = time.perf_counter()
            client.complete(prompts, max_tokens=MAX_TOKENS)
            ours.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            asyncio.run(plain(url, prompts))
            theirs.append(time.perf_counter() - t0)
        server.should_exit = True
    ratio = statistics.median(ours) / statistics.median(theirs)
    print(f"{REQUESTS} requests, {CONCURRENCY} in flight: failwell "
          f"{statistics.median(ours):.2f} s ({REQUESTS / statistics.median(ours):.0f} req/s), "
          f"plain httpx {statistics.median(theirs):.2f} s, ratio {ratio:.2f}x (target <= 1.5x)")
    sys.exit(0 if ratio <= 1.5 and trained < 300 else 1)


if __name__ == "__main__":
    main()
