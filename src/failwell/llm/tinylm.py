"""A small GPT-2-style model trained from scratch on the reversal-curse facts.

No model can be downloaded here, so the demo and the tests build one: a word-level
tokenizer over the experiment's text and a GPT-2 created from a config (transformers),
trained on the d2p and p2d training files of Berglund et al. (2023), experiment 1. The
result is a standard Hugging Face folder (``save_pretrained``), so ``HFClient`` and the
OpenAI-compatible server load it like any other causal LM.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from failwell.errors import InputError, require
from failwell.llm.jsonl import read_jsonl

TRAIN_FILES = ("d2p_prompts_train.jsonl", "p2d_prompts_train.jsonl")
TEST_FILES = ("d2p_prompts_test.jsonl", "d2p_reverse_prompts_test.jsonl",
              "p2d_prompts_test.jsonl", "p2d_reverse_prompts_test.jsonl")
SPECIAL = ("<pad>", "<unk>", "<eos>")


@dataclass(frozen=True)
class Size:
    n_embd: int
    n_layer: int
    n_head: int
    epochs: int


SIZES = {
    "demo": Size(n_embd=192, n_layer=3, n_head=4, epochs=10),  # ~1 min on 2 cores
    "test": Size(n_embd=128, n_layer=2, n_head=4, epochs=8),  # ~20 s
}


def find_experiment(explicit: Path | None = None) -> Path:
    """The experiment-1 folder: explicit, $FAILWELL_DATA_DIR, or ``shared/data`` nearby."""
    from failwell.demo import data_roots

    candidates = [explicit] if explicit else [
        root / "reversal_curse" / "experiment1" for root in data_roots()]
    for folder in candidates:
        if folder and all((folder / f).is_file() for f in TRAIN_FILES):
            return folder
    raise InputError("Cannot find the reversal-curse experiment1 folder (d2p/p2d training "
                     "files): pass --data PATH or set FAILWELL_DATA_DIR to the folder that "
                     "holds reversal_curse/ (e.g. ../shared/data).")


def build_tokenizer(texts: list[str]):
    """A word-level tokenizer (words and punctuation) as a transformers fast tokenizer."""
    tokenizers = require("tokenizers", extra="llm", purpose="The demo language model")
    transformers = require("transformers", extra="llm", purpose="The demo language model")
    split = tokenizers.pre_tokenizers.Whitespace()
    vocab = {token: i for i, token in enumerate(SPECIAL)}
    for text in texts:
        for word, _ in split.pre_tokenize_str(text):
            vocab.setdefault(word, len(vocab))
    tok = tokenizers.Tokenizer(tokenizers.models.WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = split
    return transformers.PreTrainedTokenizerFast(
        tokenizer_object=tok, pad_token="<pad>", unk_token="<unk>", eos_token="<eos>")


def train_reversal_model(data: Path, out: Path, *, size: str = "demo", seed: int = 0,
                         progress: Callable[[int, int, float], None] | None = None) -> Path:
    """Train on the d2p and p2d facts and save a Hugging Face folder at ``out``.
    ``progress(epoch, epochs, loss)`` is called after each epoch."""
    torch = require("torch", extra="torch", purpose="The demo language model")
    transformers = require("transformers", extra="llm", purpose="The demo language model")
    if size not in SIZES:
        raise InputError(f"size {size!r}: use {', '.join(SIZES)}.")
    spec = SIZES[size]
    rows = [r for name in TRAIN_FILES for r in read_jsonl(data / name)]
    tests = [r for name in TEST_FILES if (data / name).is_file()
             for r in read_jsonl(data / name)]
    # the vocabulary covers the test phrasings too, so no test word is <unk>; only the
    # training rows carry the facts
    tokenizer = build_tokenizer([r["prompt"] + " " + r["completion"] for r in rows + tests])
    torch.manual_seed(seed)
    random.seed(seed)
    config = transformers.GPT2Config(
        vocab_size=len(tokenizer), n_positions=128, n_embd=spec.n_embd,
        n_layer=spec.n_layer, n_head=spec.n_head, resid_pdrop=0.0, embd_pdrop=0.0,
        attn_pdrop=0.0, bos_token_id=tokenizer.eos_token_id,
        eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id)
    transformers.utils.logging.set_verbosity_error()  # its notice about the default loss
    model = transformers.GPT2LMHeadModel(config)
    sequences = [tokenizer(r["prompt"] + " " + r["completion"])["input_ids"]
                 + [tokenizer.eos_token_id] for r in rows]
    batch = 32
    steps = spec.epochs * -(-len(sequences) // batch)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.0)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=1e-3,
                                                   total_steps=steps, pct_start=0.1)
    model.train()
    for epoch in range(spec.epochs):
        random.shuffle(sequences)
        total = 0.0
        for start in range(0, len(sequences), batch):
            chunk = sequences[start:start + batch]
            width = max(map(len, chunk))
            ids = torch.full((len(chunk), width), tokenizer.pad_token_id)
            labels = torch.full((len(chunk), width), -100)
            mask = torch.zeros((len(chunk), width), dtype=torch.long)
            for i, seq in enumerate(chunk):
                ids[i, :len(seq)] = labels[i, :len(seq)] = torch.tensor(seq)
                mask[i, :len(seq)] = 1
            loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            schedule.step()
            total += loss.item() * len(chunk)
        if progress:
            progress(epoch + 1, spec.epochs, total / len(sequences))
    out.mkdir(parents=True, exist_ok=True)
    transformers.utils.logging.disable_progress_bar()
    model.eval().save_pretrained(out)
    tokenizer.save_pretrained(out)
    (out / "failwell.json").write_text(json.dumps({
        "trained_on": list(TRAIN_FILES), "size": size, "seed": seed,
        "trained_at": time.strftime("%Y-%m-%dT%H:%M:%S")}, indent=2) + "\n")
    return out
