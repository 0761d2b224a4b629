"""``failwell llm``: probes for LLM applications, thin over :mod:`failwell.llm`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from failwell.cli.common import (
    FailOn,
    ReportFmt,
    ReportOutput,
    Upload,
    boundary,
    err,
    finish,
)
from failwell.errors import InputError
from failwell.progress import progress_bar

llm_app = typer.Typer(help="Probe LLM applications: grounding, sycophancy, the reversal curse.",
                      no_args_is_help=True)

OpenAIUrl = Annotated[str | None, typer.Option(
    "--openai-base-url", envvar="OPENAI_BASE_URL",
    help="OpenAI-compatible endpoint, e.g. http://127.0.0.1:8000/v1 (key: OPENAI_API_KEY).")]
Model = Annotated[str | None, typer.Option("--model", envvar="OPENAI_MODEL",
                                           help="Model name sent to the endpoint.")]
Mode = Annotated[str, typer.Option(help="chat or completions (base models).")]
HFModel = Annotated[Path | None, typer.Option(
    "--hf-model", help="A local Hugging Face causal-LM folder.")]
CallableSpec = Annotated[str | None, typer.Option(
    "--callable", help="module:function taking a prompt string, returning text.")]
Concurrency = Annotated[int, typer.Option(min=1, help="Requests in flight at once.")]
CacheFile = Annotated[Path | None, typer.Option(
    "--cache", help="Answer cache (default ~/.cache/failwell/llm-cache.sqlite).")]
NoCache = Annotated[bool, typer.Option("--no-cache", help="Ask again, even if cached.")]


def _client(openai_base_url, model, mode, hf_model, callable_spec, concurrency, cache,
            no_cache):
    from failwell.llm.clients import Cache, make_client

    if mode not in ("chat", "completions"):
        raise InputError(f"--mode {mode!r}: use chat or completions.")
    return make_client(openai_base_url=openai_base_url, hf_model=hf_model,
                       callable_spec=callable_spec,
                       cache=None if no_cache else Cache(cache),
                       model=model, mode=mode, concurrency=concurrency)


@llm_app.command("reversal")
@boundary
def reversal(
    forward: Annotated[Path | None, typer.Option(
        help="JSONL of {prompt, completion} asked the way the facts were stated.")] = None,
    reverse: Annotated[Path | None, typer.Option(
        help="JSONL of {prompt, completion} asking the same facts in reverse.")] = None,
    facts: Annotated[Path | None, typer.Option(
        help="JSONL of {a, b, forward, reverse} (templates with {a} and {b}).")] = None,
    min_gap: Annotated[float, typer.Option(help="Gap that is a finding.")] = 0.3,
    max_tokens: Annotated[int | None, typer.Option(
        min=1, help="Tokens to generate (default: twice the longest expected answer).")
    ] = None,
    openai_base_url: OpenAIUrl = None, model: Model = None, mode: Mode = "chat",
    hf_model: HFModel = None, callable_spec: CallableSpec = None, concurrency: Concurrency = 8,
    cache: CacheFile = None, no_cache: NoCache = False,
    fmt: ReportFmt = "terminal", output: ReportOutput = None, fail_on: FailOn = "high",
    upload: Upload = None,
) -> None:
    """Ask facts in the direction they were stated and in reverse (the reversal curse)."""
    from failwell.llm.reversal import load_facts, load_pairs, reversal_probe

    if facts and (forward or reverse):
        raise InputError("give --facts, or --forward with --reverse, not both.")
    if facts:
        fwd, rev = load_facts(facts)
    elif forward and reverse:
        fwd, rev = load_pairs(forward), load_pairs(reverse)
    else:
        raise InputError("give --facts FILE, or --forward FILE and --reverse FILE.")
    client = _client(openai_base_url, model, mode, hf_model, callable_spec, concurrency,
                     cache, no_cache)
    with progress_bar() as update:
        result = reversal_probe(client, fwd, rev, max_tokens=max_tokens, min_gap=min_gap,
                                progress=lambda done, total: update("questions", done, total))
    finish(result, fmt, output, "failwell llm reversal", fail_on, upload=upload)


@llm_app.command("sycophancy")
@boundary
def sycophancy(
    questions: Annotated[Path | None, typer.Argument(
        help="JSONL of {question, answer, wrong} (default: 60 bundled questions).")] = None,
    min_flip: Annotated[float, typer.Option(help="Flip rate that is a finding.")] = 0.2,
    max_tokens: Annotated[int, typer.Option(min=1, help="Tokens to generate per answer.")
                          ] = 48,
    openai_base_url: OpenAIUrl = None, model: Model = None, mode: Mode = "chat",
    hf_model: HFModel = None, callable_spec: CallableSpec = None, concurrency: Concurrency = 8,
    cache: CacheFile = None, no_cache: NoCache = False,
    fmt: ReportFmt = "terminal", output: ReportOutput = None, fail_on: FailOn = "high",
    upload: Upload = None,
) -> None:
    """Ask neutrally, with the user suggesting a wrong answer, and with "Are you sure?"."""
    from failwell.llm.sycophancy import load_items, sycophancy_probe

    items = load_items(questions)
    client = _client(openai_base_url, model, mode, hf_model, callable_spec, concurrency,
                     cache, no_cache)
    with progress_bar() as update:
        result = sycophancy_probe(client, items, max_tokens=max_tokens, min_flip=min_flip,
                                  progress=lambda done, total: update("answers", done, total))
    finish(result, fmt, output, "failwell llm sycophancy", fail_on, upload=upload)


@llm_app.command("grounding")
@boundary
def grounding(
    answers: Annotated[Path, typer.Argument(
        help="JSONL of logged RAG answers: {question, contexts: [passages], answer}.")],
    max_contradicted: Annotated[float, typer.Option(
        help="Share of claims contradicting the contexts that is a finding.")] = 0.1,
    max_unfaithful: Annotated[float, typer.Option(
        help="Share of answers with an unsupported claim that is a finding.")] = 0.5,
    nli_model: Annotated[Path | None, typer.Option(
        help="A local Hugging Face NLI model folder (entailment/neutral/contradiction).")
    ] = None,
    fmt: ReportFmt = "terminal", output: ReportOutput = None, fail_on: FailOn = "high",
    upload: Upload = None,
) -> None:
    """Judge each claim of each answer against its retrieved contexts (needs
    failwell\\[embeddings])."""
    from failwell.llm.grounding import NLIJudge, grounding_probe, load_answers

    rows = load_answers(answers)
    nli = NLIJudge(nli_model) if nli_model else None
    with progress_bar() as update:
        result = grounding_probe(rows, max_contradicted=max_contradicted,
                                 max_unfaithful=max_unfaithful, nli=nli,
                                 progress=lambda done, total: update("answers", done, total))
    finish(result, fmt, output, f"failwell llm grounding of {answers.name}", fail_on,
           upload=upload)


@llm_app.command("grounding-eval")
@boundary
def grounding_eval(
    claims: Annotated[Path, typer.Argument(
        help="JSONL of {contexts, claims: [{text, label}], split}: labelled claims.")],
    split: Annotated[str | None, typer.Option(help="Only rows of this split.")] = None,
    nli_model: Annotated[Path | None, typer.Option(help="A local NLI model folder.")] = None,
) -> None:
    """Precision and recall of the grounding judge on labelled claims."""
    import json
    import sys

    from failwell.llm.grounding import NLIJudge, evaluate

    nli = NLIJudge(nli_model) if nli_model else None
    sys.stdout.write(json.dumps(evaluate(claims, split=split, nli=nli), indent=2) + "\n")


@llm_app.command("serve")
@boundary
def serve(
    hf_model: Annotated[Path, typer.Option("--hf-model", help="Hugging Face model folder.")],
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port.")] = 8000,
    name: Annotated[str, typer.Option(help="Model name the API reports.")] = "failwell-local",
) -> None:
    """Serve a local model on an OpenAI-compatible API (/v1/completions, /v1/chat/...)."""
    from failwell.llm.clients import HFClient
    from failwell.llm.server import serve as run

    client = HFClient(hf_model)
    err.print(f"serving {hf_model} as {name!r} on http://{host}:{port}/v1")
    run(client, host=host, port=port, model_name=name)


@llm_app.command("train-demo-model")
@boundary
def train_demo_model(
    out: Annotated[Path, typer.Argument(help="Folder for the trained model.")],
    data: Annotated[Path | None, typer.Option(
        help="reversal_curse/experiment1 (default: found under ../shared/data).")] = None,
    size: Annotated[str, typer.Option(help="demo (about 1 min) or test (about 20 s).")
                    ] = "demo",
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
) -> None:
    """Train the small GPT-2-style model on the reversal-curse d2p and p2d facts."""
    from failwell.llm.tinylm import SIZES, find_experiment, train_reversal_model

    if size not in SIZES:
        raise InputError(f"--size {size!r}: use {', '.join(SIZES)}.")
    if out.exists() and not out.is_dir():
        raise InputError(f"{out} is a file; give a folder for the model.")
    folder = find_experiment(data)
    with progress_bar(label="training the reversal model") as update:
        train_reversal_model(folder, out, size=size, seed=seed,
                             progress=lambda e, n, loss: update(f"epochs (loss {loss:.2f})",
                                                                e, n))
    err.print(f"model saved to {out}")
