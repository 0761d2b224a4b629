"""Fragility to small perturbations at the data's own scale.

Numeric columns get Gaussian noise of a small fraction of their own standard deviation
(integers are stochastically rounded, so they keep their type and the expected change),
ordered categories move to an adjacent level, and text gets one typo. A decision that flips
under such a change is a decision nobody can rely on.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import pandas as pd

from failwell.findings import Finding, Metric
from failwell.scanner.context import ScanContext, SkipDetector
from failwell.scanner.detectors._common import mitigation_for, pct, severity_by
from failwell.stats import wilson_interval


def add_typo(text: str, rng: np.random.Generator) -> str:
    """Swap two adjacent letters inside one word of four or more letters."""
    words = text.split(" ")
    long_words = [i for i, w in enumerate(words) if len(w) >= 4 and w.isalpha()]
    if not long_words:
        return text
    i = long_words[rng.integers(len(long_words))]
    w = words[i]
    j = int(rng.integers(1, len(w) - 2))
    words[i] = w[:j] + w[j + 1] + w[j] + w[j + 2 :]
    return " ".join(words)


def perturb_numeric(col: pd.Series, scale: float, rng: np.random.Generator) -> np.ndarray:
    x = col.to_numpy(dtype=float)
    std = np.nanstd(x)
    noisy = x + rng.normal(0.0, scale * std if std > 0 else 0.0, len(x))
    if pd.api.types.is_integer_dtype(col):
        floor = np.floor(noisy)
        noisy = floor + (rng.random(len(x)) < noisy - floor)
        return noisy.astype(col.dtype)
    return noisy


@dataclass
class RobustnessDetector:
    name: ClassVar[str] = "robustness"
    failure_modes: ClassVar[tuple[str, ...]] = ("perturbation-fragility",)
    description: ClassVar[str] = (
        "Decision flip rate under small noise at each numeric column's own scale, adjacent "
        "ordered categories, and typos in text."
    )
    noise_scale: float = 0.05
    max_flip_rate: float = 0.05

    def run(self, ctx: ScanContext) -> list[Finding]:
        ctx.require_model()
        frame = ctx.sample_frame()
        base = ctx.base_on_sample().decisions
        rng = np.random.default_rng(ctx.config.seed)
        variants = self._variants(ctx, frame, rng)
        if not variants:
            raise SkipDetector("no numeric, ordered categorical or text model inputs to perturb")
        findings, rates = [], {}
        preds = ctx.predict_many({("perturb", family, self.noise_scale): variant
                                  for family, (variant, _) in variants.items()})
        for family, (variant, columns) in variants.items():
            pred = preds[("perturb", family, self.noise_scale)].decisions
            flipped = pred != base
            rate = float(flipped.mean())
            rates[family] = rate
            ctx.log_metric(f"robustness.{family}.flip_rate", rate)
            if rate <= self.max_flip_rate:
                continue
            examples = np.flatnonzero(flipped)[:5]
            findings.append(Finding(
                "perturbation-fragility",
                severity_by(rate, 0.0, 0.15),
                f"{pct(rate)} of decisions flip under {family.replace('-', ' ')}",
                f"Perturbing {', '.join(columns[:6])}{' ...' if len(columns) > 6 else ''} "
                f"by a small amount ({family}) changes {pct(rate)} of {len(frame)} decisions.",
                self.name,
                [Metric("flip_rate", rate, self.max_flip_rate,
                        ci=wilson_interval(int(flipped.sum()), len(flipped)))],
                {"family": family, "columns": columns, "noise_scale": self.noise_scale,
                 "rows_tested": len(frame),
                 "examples": [{"row": int(i),
                               "original": _row(frame, columns, i),
                               "perturbed": _row(variant, columns, i),
                               "decision": int(base[i]), "perturbed_decision": int(pred[i])}
                              for i in examples]},
                mitigation_for("perturbation-fragility"),
            ))
        return findings

    def _variants(self, ctx, frame: pd.DataFrame, rng) -> dict[str, tuple[pd.DataFrame, list]]:
        cols = [c for c in ctx.model_columns if c not in ctx.dataset.text]
        numeric = [c for c in cols if pd.api.types.is_numeric_dtype(frame[c])
                   and not pd.api.types.is_bool_dtype(frame[c]) and frame[c].nunique() > 2]
        ordered = [c for c in cols if isinstance(frame[c].dtype, pd.CategoricalDtype)
                   and frame[c].dtype.ordered]
        out = {}
        if numeric:
            v = frame.copy(deep=False)
            for c in numeric:
                v[c] = perturb_numeric(frame[c], self.noise_scale, rng)
            out["numeric-noise"] = (v, numeric)
        if ordered:
            v = frame.copy(deep=False)
            for c in ordered:
                codes = frame[c].cat.codes.to_numpy()
                step = rng.choice([-1, 1], len(codes))
                new = np.clip(codes + step, 0, len(frame[c].cat.categories) - 1)
                v[c] = pd.Categorical.from_codes(np.where(codes < 0, -1, new),
                                                 dtype=frame[c].dtype)
            out["adjacent-category"] = (v, ordered)
        text = [c for c in ctx.dataset.text if c in ctx.model_columns]
        if text:
            v = frame.copy(deep=False)
            for c in text:
                v[c] = [add_typo(str(t), rng) for t in frame[c].fillna("")]
            out["text-typos"] = (v, text)
        return out


def _row(frame: pd.DataFrame, columns: list[str], i: int) -> dict:
    return {c: (frame[c].iloc[i].item() if hasattr(frame[c].iloc[i], "item")
                else frame[c].iloc[i]) for c in columns[:8]}
