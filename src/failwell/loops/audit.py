"""Audit a recommender's logs for a feedback loop: exposure that concentrates while the
proxy it optimizes does not pay for it (or a guardrail falls).

What is measured, for the log and (side by side) for a reference log such as an exploration
or random slice that ran at the same time:

- **concentration** over the catalog: Gini, normalised entropy, coverage, the top 10 %
  items' share (``concentration.py``), overall and per time window;
- **rich-get-richer**: does an item's exposure in one window predict its exposure in the
  next *beyond its reward rate*? The slope of log exposure on last window's log exposure,
  with the smoothed reward rate as a covariate (OLS, 95 % interval). Near 0 for a policy
  that ignores history; positive when yesterday's impressions buy today's;
- **the proxy**: the reward rate with its interval, and its difference from the reference;
- **guardrails**: each one's mean against the reference (or first third against last third
  of the period without one).

The verdict (decision rules stated here, thresholds in :class:`AuditConfig`):

- *concentrates*: with a reference, the Gini difference at equal sample sizes (bootstrap,
  95 %) lies above ``margin``; it does not when the whole interval lies below. Without one,
  the Gini at equal sample sizes rises by more than ``margin`` from the first third of the
  period to the last (bootstrap interval above ``margin``). Otherwise it cannot be told:
  *inconclusive*.
- **feedback-loop** when exposure concentrates and either the proxy's gain over the
  reference is not significant (one-sided, ``alpha``) or a guardrail falls significantly
  (one-sided, Bonferroni over guardrails). High when a guardrail falls, medium otherwise.
- **clean** when exposure does not concentrate, or concentrates with a significant proxy
  gain and every guardrail holding (concentration that the outcome pays for).
- **inconclusive** when concentration cannot be told, or when the proxy rests on fewer than
  ``min_rewards`` reward events in either log (a gain could not have shown).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from failwell.errors import InputError
from failwell.loops.concentration import figures, gini_draws, uniform_gini
from failwell.loops.logs import Guardrail, Logs, read_logs

VERDICTS = ("feedback-loop", "clean", "inconclusive")


@dataclass(frozen=True)
class AuditConfig:
    margin: float = 0.1  # a Gini difference that counts as concentration
    alpha: float = 0.05
    min_rewards: int = 10
    windows: int | None = None  # None: days when the log spans 4-31 days, else 10
    draws: int = 200  # bootstrap resamples for the Gini intervals
    max_draw_size: int = 1_000_000
    seed: int = 0

    def __post_init__(self) -> None:
        if not 0 < self.margin < 1:
            raise InputError(f"margin must be between 0 and 1, not {self.margin}.")
        if not 0 < self.alpha < 1:
            raise InputError(f"alpha must be between 0 and 1, not {self.alpha}.")
        if self.windows is not None and not 2 <= self.windows <= 1000:
            raise InputError(f"--windows must be between 2 and 1000, not {self.windows}.")
        if not 20 <= self.draws <= 10_000:
            raise InputError(f"draws must be between 20 and 10000, not {self.draws}.")


@dataclass
class LoopAudit:
    """The audit's figures and verdict; :meth:`to_result` makes the scan result that reports,
    the knowledge base and the web app read."""

    verdict: str
    reasons: list[str]
    logs: dict[str, Any]
    reference: dict[str, Any] | None
    comparison: dict[str, Any]
    windows: pd.DataFrame
    config: AuditConfig
    columns: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {"verdict": self.verdict, "reasons": self.reasons, "logs": self.logs,
                "reference": self.reference, "comparison": self.comparison,
                "windows": self.windows.to_dict(orient="records"),
                "config": asdict(self.config), "columns": self.columns}

    def to_result(self):
        from failwell.loops.finding import scan_result

        return scan_result(self)


def audit(logs: str | Path | pd.DataFrame | Logs, *, item: str = "item",
          reward: str = "reward", time: str | None = None, propensity: str | None = None,
          user: str | None = None, guardrails: list[str | Guardrail] | tuple = (),
          reference: str | Path | pd.DataFrame | Logs | None = None,
          config: AuditConfig | None = None, **options: Any) -> LoopAudit:
    """Audit ``logs`` (a path, a frame or :class:`Logs`) against an optional ``reference``
    log with the same columns. ``options`` are :class:`AuditConfig` fields."""
    import time as clock

    started = clock.perf_counter()
    config = config or AuditConfig(**options)
    rails = [g if isinstance(g, Guardrail) else Guardrail.parse(g) for g in guardrails]
    columns = {"item": item, "reward": reward, "time": time, "propensity": propensity,
               "user": user, "guardrails": rails}
    main = logs if isinstance(logs, Logs) else read_logs(logs, **columns, name="logs")
    ref = None
    if reference is not None:
        ref = reference if isinstance(reference, Logs) else read_logs(
            reference, **columns, name="reference")
    catalog = np.union1d(main.items, ref.items) if ref is not None else main.items
    rng = np.random.default_rng(config.seed)
    summary = _summary(main, catalog, rails, config, rng, "logs")
    ref_summary = (_summary(ref, catalog, rails, config, rng, "reference") if ref is not None
                   else None)
    comparison = (_against_reference(main, ref, catalog, rails, config, rng) if ref is not None
                  else _over_time(main, catalog, rails, config, rng))
    verdict, reasons = _verdict(comparison, config, summary, ref_summary)
    windows = summary.pop("window_table")
    if ref_summary is not None:
        ref_windows = ref_summary.pop("window_table")
        if len(ref_windows):
            windows = pd.concat([windows, ref_windows], ignore_index=True)
    return LoopAudit(verdict, reasons, summary, ref_summary, comparison, windows, config,
                     {**columns, "guardrails": [asdict(g) for g in rails]},
                     clock.perf_counter() - started)


# -- one log ------------------------------------------------------------------------------

def _counts(logs: Logs, catalog: np.ndarray, rows: np.ndarray | None = None) -> np.ndarray:
    """Impressions per catalog item (zeros for items never shown)."""
    where = np.searchsorted(catalog, logs.items)
    codes = logs.item if rows is None else logs.item[rows]
    return np.bincount(where[codes], minlength=len(catalog)).astype(float)


def _recorded(values: np.ndarray) -> np.ndarray:
    """A guardrail's recorded values (empty cells are rows where it does not exist)."""
    return values[~np.isnan(values)]


def _rate(values: np.ndarray, binary: bool) -> dict[str, float]:
    """Mean with a 95 % interval (Wilson for 0/1 rewards, normal otherwise)."""
    from failwell.stats import wilson_interval

    n = len(values)
    mean = float(values.mean()) if n else float("nan")
    if binary:
        low, high = wilson_interval(float(values.sum()), n)
    else:
        half = 1.96 * float(values.std(ddof=1)) / math.sqrt(n) if n > 1 else float("inf")
        low, high = mean - half, mean + half
    return {"mean": mean, "low": low, "high": high, "n": n, "events": float(values.sum())}


def window_edges(time: np.ndarray, windows: int | None) -> np.ndarray:
    """Window boundaries: whole days when the log spans 4-31 of them, else equal widths."""
    start, end = time.min(), time.max()
    if end == start:
        return np.array([start, end + np.timedelta64(1, "ns")])
    if windows is None:
        first = start.astype("datetime64[D]")
        days = int((end.astype("datetime64[D]") - first).astype(int)) + 1
        if 4 <= days <= 31:
            return first + np.arange(days + 1).astype("timedelta64[D]")
        windows = 10
    span = (end - start).astype("int64")
    steps = np.linspace(0, span + 1, windows + 1).astype("int64")
    return start + steps.astype("timedelta64[ns]")


def _window_index(logs: Logs, windows: int | None) -> tuple[np.ndarray, np.ndarray]:
    edges = window_edges(logs.time, windows)
    index = np.searchsorted(edges, logs.time, side="right") - 1
    return np.clip(index, 0, len(edges) - 2), edges


def _summary(logs: Logs, catalog: np.ndarray, rails: list[Guardrail], config: AuditConfig,
             rng: np.random.Generator, role: str) -> dict[str, Any]:
    counts = _counts(logs, catalog)
    size = int(min(logs.n, config.max_draw_size))
    null = uniform_gini(len(catalog), size, config.draws, rng)
    out: dict[str, Any] = {
        "source": logs.source,
        "catalog_items": len(catalog),
        "items_shown": int((counts > 0).sum()),
        "concentration": figures(counts),
        "uniform_gini": float(null.mean()),
        "proxy": _rate(logs.reward, logs.binary_reward),
        "guardrails": {g.column: {**_rate(_recorded(logs.guardrails[g.column]), False),
                                  "lower_is_better": g.lower} for g in rails},
        "rich_get_richer": None,
        "user_overlap": user_overlap(logs, catalog, config.seed) if logs.user is not None
        else None,
        "window_table": pd.DataFrame(),
    }
    if logs.time is not None:
        index, edges = _window_index(logs, config.windows)
        shown, won = _by_window(logs, catalog, index, len(edges) - 1)
        busy = np.flatnonzero(shown.sum(axis=1) > 0)  # windows with impressions
        out["window_table"] = pd.DataFrame([
            {"log": role, "window": int(w), "start": pd.Timestamp(edges[w]).isoformat(),
             **figures(shown[w]), "reward_rate": float(won[w].sum() / shown[w].sum())}
            for w in busy])
        out["windows"] = len(busy)
        out["rich_get_richer"] = rich_get_richer(shown[busy], won[busy],
                                                 float(logs.reward.mean()))
    return out


def _by_window(logs: Logs, catalog: np.ndarray, window: np.ndarray,
               n_windows: int) -> tuple[np.ndarray, np.ndarray]:
    """Impressions and rewards per (window, catalog item), in one pass over the log."""
    k = len(catalog)
    cell = window * k + np.searchsorted(catalog, logs.items)[logs.item]
    shown = np.bincount(cell, minlength=n_windows * k).reshape(n_windows, k).astype(float)
    won = np.bincount(cell, weights=logs.reward, minlength=n_windows * k).reshape(n_windows, k)
    return shown, won


def rich_get_richer(shown: np.ndarray, won: np.ndarray,
                    prior: float) -> dict[str, float] | None:
    """Slope of next-window log exposure on this window's, beyond the reward rate (OLS),
    from impressions and rewards per (window, item) over windows that had impressions.

    Exposure is relative to an even share (1 = what uniform exposure would give), reward
    rates are shrunk towards the log's mean (``prior``) by 20 pseudo-impressions so an item
    shown twice does not look like a hit. None with fewer than three windows.
    """
    if len(shown) < 3:
        return None
    k = shown.shape[1]
    exposure = np.log1p(shown / shown.sum(axis=1, keepdims=True) * k)
    rate = (won + 20 * prior) / (shown + 20)
    y = exposure[1:].ravel()
    x = np.column_stack([np.ones_like(y), exposure[:-1].ravel(), rate[:-1].ravel()])
    beta, *_ = np.linalg.lstsq(x, y, rcond=None)
    resid = y - x @ beta
    dof = len(y) - x.shape[1]
    if dof <= 0:
        return None
    sigma2 = float(resid @ resid) / dof
    try:
        cov = sigma2 * np.linalg.inv(x.T @ x)
    except np.linalg.LinAlgError:
        return None
    se = float(np.sqrt(max(cov[1, 1], 0.0)))
    return {"coefficient": float(beta[1]), "low": float(beta[1] - 1.96 * se),
            "high": float(beta[1] + 1.96 * se), "reward_coefficient": float(beta[2]),
            "points": len(y)}


USER_SAMPLE = 500  # users whose exposure sets are compared pairwise


def user_overlap(logs: Logs, catalog: np.ndarray, seed: int = 0) -> dict[str, float] | None:
    """How alike what different users were shown is: the mean Jaccard index of the item sets
    of pairs of users (a sample of ``USER_SAMPLE`` users with two impressions or more), as
    Chaney et al. (2018) measure homogenization. Descriptive only: it rises with the
    impressions per user, so compare logs with similar per-user volumes."""
    from scipy import sparse

    users, counts = np.unique(logs.user, return_counts=True)
    users = users[counts >= 2]
    if len(users) < 2:
        return None
    rng = np.random.default_rng(seed)
    chosen = np.sort(rng.choice(users, min(USER_SAMPLE, len(users)), replace=False))
    rows = np.isin(logs.user, chosen)
    where = np.searchsorted(catalog, logs.items)[logs.item[rows]]
    user_row = np.searchsorted(chosen, logs.user[rows])
    seen = sparse.csr_matrix((np.ones(len(where)), (user_row, where)),
                             shape=(len(chosen), len(catalog)))
    seen.sum_duplicates()
    seen.data[:] = 1.0  # a set: repeated impressions of an item count once
    inter = (seen @ seen.T).toarray()
    sizes = np.diag(inter)
    union = sizes[:, None] + sizes[None, :] - inter
    upper = np.triu_indices(len(chosen), k=1)
    jaccard = inter[upper] / np.maximum(union[upper], 1)
    return {"mean_jaccard": float(jaccard.mean()), "users": len(chosen),
            "items_per_user": float(sizes.mean())}


# -- comparisons --------------------------------------------------------------------------

def _gini_difference(a: np.ndarray, b: np.ndarray, config: AuditConfig,
                     rng: np.random.Generator) -> dict[str, float]:
    """Gini(a) - Gini(b) at equal sample sizes, with a bootstrap 95 % interval."""
    size = int(min(a.sum(), b.sum(), config.max_draw_size))
    diff = gini_draws(a, size, config.draws, rng) - gini_draws(b, size, config.draws, rng)
    low, high = np.quantile(diff, [0.025, 0.975])
    return {"difference": float(np.median(diff)), "low": float(low), "high": float(high),
            "sample_size": size}


def _one_sided(mean_a: float, var_a: float, mean_b: float, var_b: float) -> float:
    """p-value that a > b (normal approximation, unpooled)."""
    from scipy.special import ndtr

    se = math.sqrt(max(var_a + var_b, 0.0))
    if se == 0:
        return 0.0 if mean_a > mean_b else 1.0
    return float(1 - ndtr((mean_a - mean_b) / se))


def _mean_var(values: np.ndarray) -> tuple[float, float]:
    n = len(values)
    return float(values.mean()), (float(values.var(ddof=1)) / n if n > 1 else float("inf"))


def _change(a: np.ndarray, b: np.ndarray, lower_is_better: bool = False) -> dict[str, float]:
    """a against b: the difference, its interval, and p that a is better (worse: 1 - p).
    Rows where the metric was not recorded (NaN) are left out."""
    a, b = _recorded(a), _recorded(b)
    if len(a) < 2 or len(b) < 2:
        return {"difference": float("nan"), "low": float("nan"), "high": float("nan"),
                "relative": None, "p_better": 1.0, "p_worse": 1.0,
                "events": (float(a.sum()), float(b.sum()))}
    (ma, va), (mb, vb) = _mean_var(a), _mean_var(b)
    half = 1.96 * math.sqrt(va + vb) if math.isfinite(va + vb) else float("inf")
    better = _one_sided(mb, vb, ma, va) if lower_is_better else _one_sided(ma, va, mb, vb)
    worse = _one_sided(ma, va, mb, vb) if lower_is_better else _one_sided(mb, vb, ma, va)
    return {"difference": ma - mb, "low": ma - mb - half, "high": ma - mb + half,
            "relative": (ma - mb) / abs(mb) if mb else None,
            "p_better": better, "p_worse": worse, "events": (float(a.sum()), float(b.sum()))}


def _against_reference(main: Logs, ref: Logs, catalog: np.ndarray, rails: list[Guardrail],
                       config: AuditConfig, rng: np.random.Generator) -> dict[str, Any]:
    return {
        "basis": "reference",
        "gini": _gini_difference(_counts(main, catalog), _counts(ref, catalog), config, rng),
        "proxy": _change(main.reward, ref.reward),
        "guardrails": {g.column: {**_change(main.guardrails[g.column], ref.guardrails[g.column],
                                            g.lower), "lower_is_better": g.lower}
                       for g in rails},
    }


def _over_time(main: Logs, catalog: np.ndarray, rails: list[Guardrail], config: AuditConfig,
               rng: np.random.Generator) -> dict[str, Any]:
    """No reference: the last third of the period against the first third."""
    if main.time is None:
        return {"basis": "none", "gini": None, "proxy": None, "guardrails": {}}
    order = np.argsort(main.time, kind="stable")
    third = len(order) // 3
    if third < 1 or main.time[order[0]] == main.time[order[-1]]:
        return {"basis": "none", "gini": None, "proxy": None, "guardrails": {}}
    cut_early = main.time[order[third - 1]]
    cut_late = main.time[order[len(order) - third]]
    early = main.time <= cut_early
    late = main.time >= cut_late
    return {
        "basis": "first third vs last third",
        "periods": [pd.Timestamp(main.time[order[0]]).isoformat(),
                    pd.Timestamp(cut_early).isoformat(), pd.Timestamp(cut_late).isoformat(),
                    pd.Timestamp(main.time[order[-1]]).isoformat()],
        "gini": _gini_difference(_counts(main, catalog, np.flatnonzero(late)),
                                 _counts(main, catalog, np.flatnonzero(early)), config, rng),
        "proxy": _change(main.reward[late], main.reward[early]),
        "guardrails": {g.column: {**_change(main.guardrails[g.column][late],
                                            main.guardrails[g.column][early], g.lower),
                                  "lower_is_better": g.lower} for g in rails},
    }


def _verdict(comparison: dict[str, Any], config: AuditConfig, summary: dict[str, Any],
             ref_summary: dict[str, Any] | None) -> tuple[str, list[str]]:
    gini = comparison["gini"]
    against = ("the reference" if comparison["basis"] == "reference"
               else "the first third of the period")
    if gini is None:
        return "inconclusive", ["no reference log and no usable time column: concentration "
                                "can only be judged against a reference or over time"]
    if gini["low"] > config.margin:
        concentrates = True
    elif gini["high"] < config.margin:
        concentrates = False
    else:
        concentrates = None
    span = f"[{gini['low']:+.3f}, {gini['high']:+.3f}]"
    if concentrates is False:
        return "clean", [f"exposure does not concentrate beyond {against}: Gini difference "
                         f"{gini['difference']:+.3f} {span}, below {config.margin}"]
    if concentrates is None:
        return "inconclusive", [f"the Gini difference against {against} ({span}) straddles "
                                f"{config.margin}; more impressions would tell"]
    reasons = [f"exposure concentrates: Gini {gini['difference']:+.3f} {span} against "
               f"{against}"]
    proxy = comparison["proxy"]
    alpha_g = config.alpha / max(1, len(comparison["guardrails"]))
    fallen = [name for name, g in comparison["guardrails"].items() if g["p_worse"] < alpha_g]
    for name in fallen:
        g = comparison["guardrails"][name]
        reasons.append(f"guardrail {name!r} falls: {g['difference']:+.4g} "
                       f"[{g['low']:+.4g}, {g['high']:+.4g}], p = {g['p_worse']:.2g}")
    if fallen:
        return "feedback-loop", reasons
    if min(proxy["events"]) < config.min_rewards:
        return "inconclusive", [
            *reasons, f"the proxy rests on {min(proxy['events']):.0f} reward events (fewer "
            f"than {config.min_rewards}), so a gain could not have shown"]
    gain = (f"reward rate {proxy['difference']:+.4g} [{proxy['low']:+.4g}, "
            f"{proxy['high']:+.4g}], one-sided p = {proxy['p_better']:.2g}")
    if proxy["p_better"] >= config.alpha:
        return "feedback-loop", [*reasons, f"the proxy's gain is not significant: {gain}"]
    return "clean", [*reasons, f"the proxy's gain pays for it: {gain}; guardrails hold"]
