"""``failwell demo --llm``: the reversal curse, reproduced on this CPU.

A small GPT-2-style model is trained from scratch on the d2p and p2d facts of Berglund et
al. (2023), experiment 1, then asked the held-out questions in the order the facts were
stated and in reverse, as the paper did with GPT-3.
"""

from __future__ import annotations

import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from failwell.findings import ScanResult

# Berglund et al. (2023), Table 1: GPT-3 175B fine-tuned, exact match, mean over seeds
PAPER = {"d2p": (0.967, 0.001), "p2d": (0.500, 0.0)}


def run_llm_demo(data: Path | None, output_dir: Path, console: Console) -> dict[str, ScanResult]:
    from failwell.llm.clients import Cache, HFClient
    from failwell.llm.reversal import load_pairs, reversal_probe
    from failwell.llm.tinylm import find_experiment, train_reversal_model
    from failwell.progress import progress_bar
    from failwell.report import write

    folder = find_experiment(data)
    output_dir.mkdir(parents=True, exist_ok=True)
    model_dir = output_dir / "reversal-model"
    started = time.perf_counter()
    with progress_bar(label="training the reversal model") as update:
        train_reversal_model(folder, model_dir, progress=lambda e, n, loss: update(
            f"epoch (loss {loss:.2f})", e, n))
    console.print(f"trained {model_dir} in {time.perf_counter() - started:.0f} s "
                  "on the d2p and p2d facts")
    client = HFClient(model_dir, cache=Cache(output_dir / "llm-cache.sqlite"))
    results = {}
    for name in ("d2p", "p2d"):
        results[name] = reversal_probe(
            client, load_pairs(folder / f"{name}_prompts_test.jsonl"),
            load_pairs(folder / f"{name}_reverse_prompts_test.jsonl"))
        write(results[name], "html", output_dir / f"reversal-{name}.html",
              title=f"failwell llm reversal: {name} facts")
    table = Table(title="reversal curse: exact-match accuracy, this model vs the paper")
    for col in ("facts stated as", "same order", "paper", "reverse", "paper", "finding"):
        table.add_column(col)
    for name, result in results.items():
        m = result.metrics
        table.add_row("description → name" if name == "d2p" else "name → description",
                      f"{m['forward_accuracy']:.1%}", f"{PAPER[name][0]:.1%}",
                      f"{m['reverse_accuracy']:.1%}", f"{PAPER[name][1]:.1%}",
                      result.findings[0].severity.value if result.findings else "none")
    console.print(table)
    console.print(f"Reports: {output_dir / 'reversal-d2p.html'}, "
                  f"{output_dir / 'reversal-p2d.html'}. Ask the model yourself: "
                  f"failwell llm serve --hf-model {model_dir}")
    return results
