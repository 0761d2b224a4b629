"""Off-policy evaluation: what a candidate policy would earn, estimated from logs that another
(logging) policy produced, before the candidate ever runs.

A recommender's logs only show the reward of the item that was shown; reweighting each logged
round by how much more (or less) often the candidate would have shown that item recovers the
candidate's expected reward, provided the logging policy's propensities are right and it gave
every item the candidate might pick a chance. The estimators use the same formulas as the Open
Bandit Pipeline (Saito et al. 2021, ``obp.ope``) so figures can be compared with theirs:

- ``ips``   inverse propensity scoring: mean of ``w * r`` with ``w = pi_e(a|x) / pi_b(a|x)``.
  Unbiased when the propensities are right; its variance grows with the weights.
- ``snips`` self-normalised IPS: ``sum(w r) / sum(w)``. Slightly biased, usually far less
  variable, and immune to a constant error in the propensities.
- ``dr``    doubly robust: ``sum_a pi_e(a|x) q(x, a) + w (r - q(x, a))`` with a reward model
  ``q`` (see :func:`fit_reward_model`). Unbiased when the propensities are right whatever
  ``q`` is; the better ``q``, the narrower the interval.

Intervals default to the normal approximation (CLT on the per-round terms, the delta method for
SNIPS): deterministic, instant, and, as the tests show on a simulated bandit, at nominal coverage
for a few thousand rounds. ``method="bootstrap"`` gives percentile intervals that follow skewed
distributions (rare clicks, a few large weights) at ``n_bootstrap`` times the work.

Everything here is numpy; scikit-learn is imported only by :func:`fit_reward_model`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from statistics import NormalDist
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike

from failwell.errors import InputError, close_matches

ESTIMATORS = ("ips", "snips", "dr")
MAX_BOOTSTRAP = 100_000
MAX_BOOTSTRAP_DRAWS = 2_000_000_000  # rounds x resamples: about a minute of work
_SUM_TOLERANCE = 1e-6
_BOOTSTRAP_CELLS = 4_000_000  # resampled indices held at once (32 MB of int64)


@dataclass(frozen=True)
class Estimate:
    """One estimator's answer: the candidate's expected reward per round and how sure it is.

    ``effective_sample_size`` and ``max_weight`` say how much of the log the estimate really
    rests on: an ESS far below ``n`` or one huge weight means a few rounds decide the figure.
    """

    estimator: str
    value: float
    low: float
    high: float
    confidence: float
    n: int
    effective_sample_size: float
    max_weight: float

    def to_dict(self) -> dict:
        """Plain floats and ints, ready for JSON."""
        return dataclasses.asdict(self)


def estimate(
    reward: ArrayLike,
    action: ArrayLike,
    propensity: ArrayLike | None,
    action_dist: ArrayLike,
    *,
    position: ArrayLike | None = None,
    estimated_rewards: ArrayLike | None = None,
    estimators: Sequence[str] = ESTIMATORS,
    confidence: float = 0.95,
    method: Literal["normal", "bootstrap"] = "normal",
    n_bootstrap: int = 1000,
    seed: int = 0,
) -> list[Estimate]:
    """Estimate the candidate policy's expected reward per round, one :class:`Estimate` each.

    ``reward``, ``action`` (int codes in ``[0, n_actions)``) and ``propensity`` (the logging
    policy's probability of the logged action) have one entry per logged round.
    ``action_dist`` is the candidate's probabilities, ``(n, n_actions)`` or, as in obp,
    ``(n, n_actions, n_positions)``; with positions, ``position`` (int codes from 0) picks
    each row's slice. ``estimated_rewards`` is q(x, a) for DR, of the same shape, or
    ``(n, n_actions)`` meaning q at each row's own position (what :func:`fit_reward_model`
    returns).
    """
    names = _check_options(estimators, confidence, method, n_bootstrap)
    if propensity is None:
        raise InputError("IPS, SNIPS and DR need the logging policy's propensities "
                         "(its probability of each logged action); none were given")
    r, a, p, pi, q = _check_inputs(reward, action, propensity, action_dist, position,
                                   estimated_rewards, need_q="dr" in names)
    if method == "bootstrap" and r.size * n_bootstrap > MAX_BOOTSTRAP_DRAWS:
        raise InputError(f"a bootstrap of {n_bootstrap:,} resamples of {r.size:,} rounds is "
                         f"over {MAX_BOOTSTRAP_DRAWS:,} draws; use fewer resamples or "
                         "method='normal', which is as good at this size")
    rows = np.arange(r.size)
    w = pi[rows, a] / p
    weight_sq = float(np.dot(w, w))
    ess = float(w.sum() ** 2 / weight_sq) if weight_sq > 0 else 0.0
    max_weight = float(w.max())
    if "snips" in names and not w.sum() > 0:
        raise InputError("the candidate policy gives probability 0 to every logged action, so "
                         "SNIPS has nothing to normalise by and IPS is 0 by construction: "
                         "these logs cannot evaluate this policy")

    terms = {"ips": w * r}
    if "dr" in names:
        terms["dr"] = np.einsum("ij,ij->i", pi, q) + w * (r - q[rows, a])
    values = {name: float(t.mean()) for name, t in terms.items()}
    if "snips" in names:
        values["snips"] = float(np.dot(w, r) / w.sum())

    if method == "normal":
        bounds = _normal_bounds(values, terms, w, r, confidence)
    else:
        bounds = _bootstrap_bounds(names, terms, w, r, confidence, n_bootstrap, seed)
    return [Estimate(name, values[name], *bounds[name], confidence, int(r.size), ess, max_weight)
            for name in names]


def _normal_bounds(values: dict[str, float], terms: dict[str, np.ndarray], w: np.ndarray,
                   r: np.ndarray, confidence: float) -> dict[str, tuple[float, float]]:
    """CLT on the per-round terms; SNIPS through its linearisation w (r - V) / mean(w)."""
    z = NormalDist().inv_cdf(0.5 + confidence / 2)
    influence = dict(terms)
    if "snips" in values:
        influence["snips"] = w * (r - values["snips"]) / w.mean()
    out = {}
    for name, value in values.items():
        n = influence[name].size
        se = float(np.std(influence[name], ddof=1) / np.sqrt(n)) if n > 1 else float("inf")
        out[name] = (value - z * se, value + z * se)
    return out


def _bootstrap_bounds(names: list[str], terms: dict[str, np.ndarray], w: np.ndarray,
                      r: np.ndarray, confidence: float, n_bootstrap: int,
                      seed: int) -> dict[str, tuple[float, float]]:
    """Percentile bootstrap over rounds, the same resamples for every estimator, in chunks so
    memory stays bounded whatever n and n_bootstrap are."""
    rng = np.random.default_rng(seed)
    n = w.size
    wr = w * r
    draws: dict[str, list[np.ndarray]] = {name: [] for name in names}
    chunk = max(1, _BOOTSTRAP_CELLS // n)
    done = 0
    while done < n_bootstrap:
        size = min(chunk, n_bootstrap - done)
        idx = rng.integers(0, n, size=(size, n))
        for name in names:
            if name == "snips":
                den = w[idx].sum(axis=1)
                with np.errstate(invalid="ignore", divide="ignore"):
                    draws[name].append(wr[idx].sum(axis=1) / den)
            else:
                draws[name].append(terms[name][idx].mean(axis=1))
        done += size
    alpha = 1 - confidence
    out = {}
    for name in names:
        stats = np.concatenate(draws[name])
        stats = stats[np.isfinite(stats)]  # a SNIPS resample with no weight at all
        low, high = np.quantile(stats, [alpha / 2, 1 - alpha / 2])
        out[name] = (float(low), float(high))
    return out


def _check_options(estimators: Sequence[str], confidence: float, method: str,
                   n_bootstrap: int) -> list[str]:
    names = [estimators] if isinstance(estimators, str) else list(estimators)
    if not names:
        raise InputError(f"no estimator asked for; choose from {', '.join(ESTIMATORS)}")
    for name in names:
        if name not in ESTIMATORS:
            hint = close_matches(str(name), ESTIMATORS)
            raise InputError(f"unknown estimator {name!r}; choose from {', '.join(ESTIMATORS)}"
                             + (f" (did you mean {hint[0]!r}?)" if hint else ""))
    if not 0 < confidence < 1:
        raise InputError(f"confidence must be between 0 and 1 (exclusive), not {confidence}")
    if method not in ("normal", "bootstrap"):
        raise InputError(f"method must be 'normal' or 'bootstrap', not {method!r}")
    if method == "bootstrap" and not 1 <= n_bootstrap <= MAX_BOOTSTRAP:
        raise InputError(f"n_bootstrap must be between 1 and {MAX_BOOTSTRAP:,}, "
                         f"not {n_bootstrap}")
    return list(dict.fromkeys(names))


def _first(bad: np.ndarray, values: np.ndarray | None = None) -> str:
    """'N rows (first: row i, value v)' for a boolean mask, the wording every check shares."""
    rows = np.flatnonzero(bad)
    shown = ""
    if values is not None:
        value = np.asarray(values)[rows[0]].item()
        shown = f", value {value:.6g}" if isinstance(value, float) else f", value {value}"
    return f"{rows.size} row{'s' if rows.size != 1 else ''} (first: row {rows[0]}{shown})"


def _codes(name: str, values: ArrayLike, n: int) -> np.ndarray:
    """Integer codes from ints or integral floats, refused with the first offending row."""
    arr = np.asarray(values)
    if arr.ndim != 1:
        raise InputError(f"{name} must be one-dimensional, got shape {arr.shape}")
    if arr.size != n:
        raise InputError(f"{name} has {arr.size} rows but reward has {n}; every array needs "
                         "one entry per logged round")
    if arr.dtype.kind in "iu":
        return arr.astype(np.int64)
    if arr.dtype.kind not in "fb":
        raise InputError(f"{name} must be integer codes, not {arr.dtype}")
    as_float = arr.astype(float)
    bad = ~np.isfinite(as_float) | (as_float != np.round(as_float))
    if bad.any():
        raise InputError(f"{name} must be integer codes; not so in {_first(bad, arr)}")
    return as_float.astype(np.int64)


def _at_position(name: str, values: ArrayLike, n: int, pos: np.ndarray | None,
                 n_actions: int | None) -> np.ndarray:
    """An (n, n_actions) array: 2-D as given, 3-D sliced at each row's position."""
    arr = np.asarray(values, dtype=float)
    if arr.ndim not in (2, 3):
        raise InputError(f"{name} must be (n, n_actions) or (n, n_actions, n_positions), "
                         f"got shape {arr.shape}")
    if arr.shape[0] != n:
        raise InputError(f"{name} has {arr.shape[0]} rows but reward has {n}; every array "
                         "needs one entry per logged round")
    if n_actions is not None and arr.shape[1] != n_actions:
        raise InputError(f"{name} has {arr.shape[1]} actions but action_dist has {n_actions}")
    if arr.ndim == 2:
        return arr
    if pos is None:
        if arr.shape[2] != 1:
            raise InputError(f"{name} has {arr.shape[2]} positions: pass position= to say "
                             "which one each logged round was shown at")
        return arr[:, :, 0]
    bad = pos >= arr.shape[2]
    if bad.any():
        raise InputError(f"position codes must be below {name}'s {arr.shape[2]} positions; "
                         f"out of range in {_first(bad, pos)}")
    return arr[np.arange(n), :, pos]


def _check_inputs(reward: ArrayLike, action: ArrayLike, propensity: ArrayLike,
                  action_dist: ArrayLike, position: ArrayLike | None,
                  estimated_rewards: ArrayLike | None, *, need_q: bool):
    r = np.asarray(reward, dtype=float)
    if r.ndim != 1:
        raise InputError(f"reward must be one-dimensional, got shape {r.shape}")
    n = r.size
    if n == 0:
        raise InputError("no logged rounds: reward, action and propensity are empty")
    bad = ~np.isfinite(r)
    if bad.any():
        raise InputError(f"reward is NaN or infinite in {_first(bad)}; drop or fill those "
                         "rounds first")
    a = _codes("action", action, n)
    p = np.asarray(propensity, dtype=float)
    if p.ndim != 1 or p.size != n:
        raise InputError(f"propensity has shape {p.shape} but reward has {n} rows; every "
                         "array needs one entry per logged round")
    bad = ~((p > 0) & (p <= 1))  # NaN fails both comparisons
    if bad.any():
        raise InputError(f"propensities must be in (0, 1]; out of range in {_first(bad, p)}: "
                         "each is the logging policy's probability of the action it took, "
                         "which cannot be 0 (or above 1)")
    pos = None if position is None else _codes("position", position, n)
    if pos is not None and (pos < 0).any():
        raise InputError(f"position codes must be 0 or more; negative in {_first(pos < 0)}")
    pi = _at_position("action_dist", action_dist, n, pos, None)
    n_actions = pi.shape[1]
    bad = (a < 0) | (a >= n_actions)
    if bad.any():
        raise InputError(f"action codes must be in [0, {n_actions}) to index action_dist; "
                         f"out of range in {_first(bad, a)}")
    bad = ~np.isfinite(pi).all(axis=1) | (pi < 0).any(axis=1)
    if bad.any():
        raise InputError("action_dist must hold probabilities; a negative or missing value "
                         f"in {_first(bad)}")
    bad = np.abs(pi.sum(axis=1) - 1) > _SUM_TOLERANCE
    if bad.any():
        raise InputError(f"action_dist rows must sum to 1 (tolerance {_SUM_TOLERANCE:g}); "
                         f"not so in {_first(bad, pi.sum(axis=1))}")
    q = None
    if need_q:
        if estimated_rewards is None:
            raise InputError("DR needs estimated_rewards, a reward model's q(x, a) for every "
                             "round and action (fit_reward_model gives one); or leave 'dr' "
                             "out of estimators")
        q = _at_position("estimated_rewards", estimated_rewards, n, pos, n_actions)
        bad = ~np.isfinite(q).all(axis=1)
        if bad.any():
            raise InputError(f"estimated_rewards is NaN or infinite in {_first(bad)}")
    return r, a, p, pi, q


def fit_reward_model(
    context: ArrayLike,
    action: ArrayLike,
    reward: ArrayLike,
    n_actions: int,
    *,
    position: ArrayLike | None = None,
    folds: int = 2,
    seed: int = 0,
) -> np.ndarray:
    """Cross-fitted q(x, a), shape ``(n, n_actions)``, for DR's ``estimated_rewards``.

    Each row's predictions come from a model that never saw that row: a model scored on its own
    training rounds fits their noise, and DR would subtract the noise it should correct.
    Binary rewards get a logistic regression (probabilities), others a ridge regression, on
    the standardised context plus a one-hot action (and a one-hot position when given, in
    which case q is for each row's own position).
    """
    from sklearn.linear_model import LogisticRegression, Ridge
    from sklearn.model_selection import KFold, StratifiedKFold

    x = np.asarray(context, dtype=float)
    if x.ndim == 1:
        x = x[:, None]
    r = np.asarray(reward, dtype=float)
    n = r.size
    if r.ndim != 1 or n == 0:
        raise InputError(f"reward must be a non-empty one-dimensional array, got {r.shape}")
    if x.ndim != 2 or x.shape[0] != n:
        raise InputError(f"context must be (n, n_features) with n = {n}, got {x.shape}")
    bad = ~np.isfinite(r)
    if bad.any():
        raise InputError(f"reward is NaN or infinite in {_first(bad)}")
    bad = ~np.isfinite(x).all(axis=1)
    if bad.any():
        raise InputError(f"context is NaN or infinite in {_first(bad)}")
    if int(n_actions) < 1:
        raise InputError(f"n_actions must be at least 1, not {n_actions}")
    a = _codes("action", action, n)
    bad = (a < 0) | (a >= n_actions)
    if bad.any():
        raise InputError(f"action codes must be in [0, {n_actions}); out of range in "
                         f"{_first(bad, a)}")
    pos = np.zeros(n, dtype=np.int64) if position is None else _codes("position", position, n)
    if (pos < 0).any():
        raise InputError(f"position codes must be 0 or more; negative in {_first(pos < 0)}")
    if not 2 <= folds <= n:
        raise InputError(f"folds must be between 2 and the number of rounds ({n}), not {folds}")
    n_positions = int(pos.max()) + 1

    binary = bool(np.isin(r, (0.0, 1.0)).all())
    counts = np.bincount(r.astype(int)) if binary else np.array([])
    if binary and counts.size == 2 and counts.min() >= folds:
        splits = StratifiedKFold(folds, shuffle=True, random_state=seed).split(x, r)
    else:
        splits = KFold(folds, shuffle=True, random_state=seed).split(x)
    eye_a, eye_p = np.eye(n_actions), np.eye(n_positions)
    q = np.empty((n, n_actions))
    for train, test in splits:
        mean, scale = x[train].mean(axis=0), x[train].std(axis=0)
        scale[scale == 0] = 1.0
        z = (x - mean) / scale

        def design(rows: np.ndarray, acts: np.ndarray, z=z) -> np.ndarray:
            return np.hstack([z[rows], eye_a[acts], eye_p[pos[rows]]])

        if binary and np.unique(r[train]).size < 2:
            q[test] = r[train][0]  # a fold with one outcome only: that is its best guess
            continue
        model = (LogisticRegression(max_iter=2000) if binary else Ridge(alpha=1.0))
        model.fit(design(train, a[train]), r[train])
        for act in range(n_actions):
            features = design(test, np.full(test.size, act))
            q[test, act] = (model.predict_proba(features)[:, 1] if binary
                            else model.predict(features))
    return q


# -- candidate policies: each returns an action_dist ---------------------------------------

def uniform(n: int, n_actions: int) -> np.ndarray:
    """Every action equally likely: the exploration baseline (and, against uniform-random
    logs, a check: IPS then equals the logged mean reward exactly)."""
    if n < 1 or n_actions < 1:
        raise InputError(f"uniform needs n >= 1 and n_actions >= 1, got {n} and {n_actions}")
    return np.full((n, n_actions), 1.0 / n_actions)


def _scores(scores: ArrayLike) -> np.ndarray:
    s = np.asarray(scores, dtype=float)
    if s.ndim != 2 or s.size == 0:
        raise InputError(f"scores must be (n, n_actions), got shape {s.shape}; for one score "
                         "per action shared by all rows use np.broadcast_to(s, (n, n_actions))")
    bad = ~np.isfinite(s).all(axis=1)
    if bad.any():
        raise InputError(f"scores are NaN or infinite in {_first(bad)}")
    return s


def from_scores(scores: ArrayLike, k: int | None = None, epsilon: float = 0.0) -> np.ndarray:
    """Top-k of each row's scores, uniformly (k=None: the single best, i.e. greedy), mixed with
    ``epsilon`` of uniform exploration: how most deployed rankers actually pick.

    Ties go to the lower action code, so the policy is deterministic given the scores.
    """
    s = _scores(scores)
    n, n_actions = s.shape
    k = 1 if k is None else int(k)
    if not 1 <= k <= n_actions:
        raise InputError(f"k must be between 1 and {n_actions} actions, not {k}")
    if not 0.0 <= epsilon <= 1.0:
        raise InputError(f"epsilon must be between 0 and 1, not {epsilon}")
    top = np.argsort(-s, axis=1, kind="stable")[:, :k]
    dist = np.full((n, n_actions), epsilon / n_actions)
    np.put_along_axis(dist, top, dist[0, 0] + (1.0 - epsilon) / k, axis=1)
    return dist


def softmax(scores: ArrayLike, temperature: float = 1.0) -> np.ndarray:
    """A stochastic policy that prefers high scores (obp's ``softmax``/``IPWLearner`` style):
    every action keeps some probability, which keeps importance weights bounded."""
    s = _scores(scores)
    if not temperature > 0:
        raise InputError(f"temperature must be positive, not {temperature}")
    logits = s / temperature
    logits -= logits.max(axis=1, keepdims=True)
    e = np.exp(logits)
    return e / e.sum(axis=1, keepdims=True)
