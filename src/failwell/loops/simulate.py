"""Simulate a recommender retrained, round after round, on the interactions it caused.

After Chaney, Stewart & Engelhardt 2018 ("How algorithmic confounding in recommendation
systems increases homogeneity and decreases utility", RecSys '18): users have latent
preferences, items latent attributes, and the simulator knows every user's true utility for
every item. A recommender that learns only from the clicks on what it chose to show narrows
what everyone sees: users' slates converge (homogenization), impressions pile onto a few
items, and true utility stays below what an ideal recommender gives, while the proxy it
optimizes (the click-through rate) looks fine. Measuring this needs the counterfactual that
real logs never have: the same users and items under another policy, which a simulation gives.

The world (one per seed, shared by every strategy):

- topic popularity ``mu_u ~ Dirichlet(1) * user_concentration`` and
  ``mu_i ~ Dirichlet(1) * item_concentration``; preferences ``rho_u ~ Dirichlet(mu_u)``,
  attributes ``alpha_i ~ Dirichlet(mu_i)`` (items sparse, users mixed, as in the paper);
- true utility ``rho_u . alpha_i`` times log-normal taste noise (``utility_noise``), clipped to
  [0, 1]; a user clicks the item at slate position ``j`` (0-based) with probability
  ``utility / (j + 1) ** position_bias``;
- ``startup_rounds`` of uniformly random slates (logged with rounds ``1 - startup_rounds``
  .. ``0``) train the first model; rounds ``1 .. n_rounds`` follow the policies. Clicks use
  common random numbers: one uniform draw per (round, user, item) for every strategy, so
  differences between strategies are the policies', not the dice's.

The strategies, each its own feedback loop on the same world (:data:`STRATEGIES`):

- ``baseline``: the built-in recommender retrained on all its logs, greedy top-k;
- ``exploration``: the last ``ceil(epsilon * k)`` slots of each slate filled uniformly at
  random from the items not already in it, logged with their exact propensity;
- ``ips``: the same exploring policy, retrained on inverse-propensity-weighted clicks (the
  unbiased relevance estimate of Saito et al. 2020; without exploration every propensity of a
  greedy policy is 1 and the weighting would change nothing);
- ``diversity``: maximal marginal relevance (MMR) re-ranking of the top ``3 k`` items by
  ``mmr_lambda * relevance - (1 - mmr_lambda) * similarity`` over the model's item factors;
- ``no-feedback``: the control. The same model retrained on logs of uniformly random slates
  (same amount of data); its own slates are measured but never logged, so nothing feeds back;
- ``ideal``: the top-k items by true utility, the paper's reference;
- ``custom``: a model you pass (below), retrained on its own logs.

The built-in recommender is implicit-feedback matrix factorization with item biases, fitted
by weighted alternating least squares in numpy: the target of a (user, item) cell is its clicks
per logged round, capped at 1 (never shown counts as no click: exactly the confounding), and a
clicked cell weighs ``1 + click_weight``. ``ips`` and ``no-feedback`` count each click as
``1 / max(propensity, ips_clip)`` clicks instead. Each fit is warm-started from the last one.

A model of your own is a callable ``model(logs) -> policy``. ``logs`` is a DataFrame with
columns ``round, user, item, position, click, propensity`` (all its logs so far, the random
startup included: rounds <= 0). What it returns is either a score matrix (``n_users`` x
``n_items``; the simulator shows each user the top k) or a callable
``policy(users: np.ndarray, k: int) -> np.ndarray`` giving ``len(users)`` slates of ``k``
distinct item ids. Its slates are logged with propensity 1 (the simulator cannot know a
randomized policy's). Anything else is refused with :class:`~failwell.errors.InputError`.

Per round and strategy (:attr:`SimulationResult.rounds`): ``ctr`` (the proxy: clicks per
impression), ``utility`` (true mean utility of what was shown), ``utility_ratio`` (against the
ideal's), ``jaccard`` (mean pairwise Jaccard index of users' slates), ``homogenization``
(``jaccard`` minus the ideal's, Chaney et al.'s "change in Jaccard index"), and over the items'
impressions ``gini``, ``top_share`` (share of the top 10 % of items) and ``coverage``.

Why not T-RECS: ``trecs`` (Lucherini et al., the simulator built for exactly this study) was
checked as the engine and is not used. Its newest release, 0.2.1 (PyPI has 0.1.0, 0.2.0,
0.2.1), pins ``pandas==1.0.5``, which cannot coexist with our ``pandas>=2.1`` (pip falls back
to building pandas 1.0.5 from source, whose build needs numpy 1.17.3 and fails on Python
3.11). ``import trecs`` imports ``lenskit.algorithms.als`` unconditionally; lenskit 0.14
(the last with that module) needs ``numba<0.59`` and so numpy < 2, and lenskit 2025.x no longer
has ``lenskit.algorithms`` and needs torch and ``pandas~=2.0``. Installed with ``--no-deps``
next to numpy 2.4.6 / pandas 3.1.1 and lenskit stubbed out, ``ContentFiltering`` with
``RecSimilarity``/``InteractionSimilarity`` ran, but ``InteractionSpread`` (its homogenization
measure) fails on ``np.trapz``, removed in numpy 2. A dependency that needs a stub and a patch,
and that has none of the mitigations compared here (propensity-logged exploration, IPS
retraining, MMR), would cost more than this numpy simulation.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from numbers import Integral, Real
from typing import Any

import numpy as np
import pandas as pd

from failwell.errors import InputError, close_matches
from failwell.loops.concentration import figures

STRATEGIES = ("baseline", "exploration", "ips", "diversity", "no-feedback", "ideal")
DEFAULT_STRATEGIES = ("baseline", "exploration", "ips", "diversity")
CUSTOM = "custom"
LOG_COLUMNS = ("round", "user", "item", "position", "click", "propensity")
METRICS = ("ctr", "ctr_ideal", "utility", "utility_ideal", "utility_ratio", "jaccard",
           "jaccard_ideal", "homogenization", "gini", "gini_ideal", "top_share", "coverage")

MAX_CELLS = 500_000_000  # users x items x rounds (startup included): the work of one run
MAX_MATRIX = 10_000_000  # users x items: each dense user-item matrix (80 MB of float64)
MAX_IMPRESSIONS = 20_000_000  # users x k x rounds: the rows of the logs kept per strategy
JACCARD_USERS = 1_000  # pairwise Jaccard over a fixed sample of users beyond this many
_ALS_FIRST, _ALS_ROUND = 8, 2  # ALS sweeps for the first fit and, warm-started, each round
_MMR_POOL = 3  # MMR re-ranks the top MMR_POOL * k items

Policy = Callable[[np.ndarray, int], np.ndarray]
Model = Callable[[pd.DataFrame], Any]


@dataclass(frozen=True)
class SimulationConfig:
    """The world, the built-in recommender and the strategies' knobs; checked on creation."""

    n_users: int = 200
    n_items: int = 300
    n_rounds: int = 20
    k: int = 10  # slate size
    n_topics: int = 10  # latent dimensions of the true preferences
    n_factors: int = 10  # latent dimensions of the built-in matrix factorization
    seed: int = 0
    startup_rounds: int = 5  # rounds of uniformly random slates before the first training
    epsilon: float = 0.1  # exploration: share of each slate filled at random
    mmr_lambda: float = 0.7  # diversity: weight of relevance against similarity
    ips_clip: float = 0.1  # ips: smallest propensity divided by (caps a weight at 10)
    position_bias: float = 0.5  # click probability falls as 1 / (position + 1) ** this
    user_concentration: float = 10.0  # Dirichlet total: users' preferences are mixed
    item_concentration: float = 0.1  # Dirichlet total: items mostly have one topic
    utility_noise: float = 0.3  # sd of the log-normal taste noise on true utility
    regularization: float = 1.0  # L2 penalty of the matrix factorization
    click_weight: float = 5.0  # extra weight of a clicked cell in the factorization

    def __post_init__(self) -> None:
        for name in ("n_users", "n_items", "n_rounds", "k", "n_topics", "n_factors",
                     "startup_rounds"):
            _check_int(name, getattr(self, name), low=2 if name == "n_users" else 1)
        _check_int("seed", self.seed, low=0)
        for name, low, high in (("epsilon", 0.0, 1.0), ("mmr_lambda", 0.0, 1.0),
                                ("position_bias", 0.0, 10.0), ("utility_noise", 0.0, 5.0),
                                ("click_weight", 0.0, 1e6)):
            _check_real(name, getattr(self, name), low, high)
        for name in ("ips_clip", "user_concentration", "item_concentration",
                     "regularization"):
            _check_real(name, getattr(self, name), 0.0, math.inf, open_low=True)
        if self.ips_clip > 1:
            raise InputError(f"ips_clip is a smallest propensity: at most 1, not "
                             f"{self.ips_clip}.")
        if self.k > self.n_items:
            raise InputError(f"k (the slate size, {self.k}) cannot exceed n_items "
                             f"({self.n_items}): a slate shows distinct items.")
        rounds = self.n_rounds + self.startup_rounds
        limits = (
            (self.n_users * self.n_items, MAX_MATRIX,
             "n_users x n_items", "each dense user-item matrix"),
            (self.n_users * self.n_items * rounds, MAX_CELLS,
             "n_users x n_items x (n_rounds + startup_rounds)", "the work of one run"),
            (self.n_users * self.k * rounds, MAX_IMPRESSIONS,
             "n_users x k x (n_rounds + startup_rounds)", "the logged impressions"),
        )
        for value, limit, what, why in limits:
            if value > limit:
                raise InputError(f"{what} is {value:,}; at most {limit:,} ({why}). Simulate "
                                 "fewer users, items or rounds.")

    @property
    def explore_slots(self) -> int:
        """Slots per slate the exploring strategies fill at random (0 when epsilon is 0)."""
        return min(self.k, math.ceil(self.epsilon * self.k - 1e-9))


def _check_int(name: str, value: object, *, low: int) -> None:
    if isinstance(value, bool) or not isinstance(value, Integral):
        raise InputError(f"{name} must be a whole number, not {value!r}.")
    if value < low:
        raise InputError(f"{name} must be at least {low}, not {value}.")


def _check_real(name: str, value: object, low: float, high: float, *,
                open_low: bool = False) -> None:
    if isinstance(value, bool) or not isinstance(value, Real) or not math.isfinite(value):
        raise InputError(f"{name} must be a finite number, not {value!r}.")
    if value < low or (open_low and value == low) or value > high:
        span = f"above {low:g}" if open_low else f"between {low:g} and {high:g}"
        raise InputError(f"{name} must be {span}, not {value}.")


@dataclass
class SimulationResult:
    """Every round's figures per strategy, and the logs each strategy retrained on."""

    config: SimulationConfig
    strategies: tuple[str, ...]
    rounds: pd.DataFrame  # one row per (round, strategy), columns: round, strategy, METRICS
    logs: dict[str, pd.DataFrame] = field(repr=False, default_factory=dict)
    seconds: float = 0.0

    def summary(self) -> pd.DataFrame:
        """The final round, one row per strategy (in the order they were asked for)."""
        last = self.rounds[self.rounds["round"] == self.rounds["round"].max()]
        return last.set_index("strategy").loc[list(self.strategies), list(METRICS)]

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe: plain numbers, NaN as None; the logs are left out (see ``logs``)."""
        return {"config": _plain(asdict(self.config)), "strategies": list(self.strategies),
                "seconds": round(self.seconds, 3),
                "summary": {name: _plain(row) for name, row in
                            self.summary().to_dict(orient="index").items()},
                "rounds": [_plain(row) for row in self.rounds.to_dict(orient="records")]}


def _plain(row: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in row.items():
        if isinstance(value, Integral):
            out[key] = int(value)
        elif isinstance(value, Real):
            out[key] = float(value) if math.isfinite(value) else None
        else:
            out[key] = value
    return out


def simulate(config: SimulationConfig | None = None, *,
             strategies: Sequence[str] = DEFAULT_STRATEGIES,
             model: Model | None = None,
             progress: Callable[[int], None] | None = None) -> SimulationResult:
    """Run every strategy (and ``model``, as ``"custom"``) on one world for
    ``config.n_rounds`` rounds; ``progress(n)`` is called after round ``n``."""
    started = time.perf_counter()
    config = config or SimulationConfig()
    names = _strategies(strategies, model)
    if progress is not None and not callable(progress):
        raise InputError(f"progress must be a callable taking the round number, not "
                         f"{type(progress).__name__}.")
    world = _World(config)
    arms = [_Arm(name, config, world, model) for name in names]
    rows = []
    for rnd in range(1, config.n_rounds + 1):
        uniforms = world.uniforms(rnd)
        ideal = world.measure_ideal(uniforms)
        for arm in arms:
            slates, clicks = arm.play(rnd, uniforms)
            rows.append({"round": rnd, "strategy": arm.name,
                         **world.measure(slates, clicks, ideal)})
        if progress is not None:
            progress(rnd)
    frame = pd.DataFrame(rows, columns=["round", "strategy", *METRICS])
    return SimulationResult(config, names, frame, {arm.name: arm.frame() for arm in arms},
                            time.perf_counter() - started)


def _strategies(strategies: Sequence[str], model: Model | None) -> tuple[str, ...]:
    if isinstance(strategies, str):
        strategies = (strategies,)
    names = list(strategies)
    for name in names:
        if name not in STRATEGIES:
            hint = close_matches(str(name), STRATEGIES)
            raise InputError(f"unknown strategy {name!r}"
                             + (f" (did you mean {hint[0]!r}?)" if hint else "")
                             + f"; known: {', '.join(STRATEGIES)}.")
    if len(set(names)) != len(names):
        raise InputError(f"strategies lists one twice: {names}.")
    if model is not None:
        if not callable(model):
            raise InputError(f"model must be a callable taking the logs (a DataFrame) and "
                             f"returning a policy, not {type(model).__name__}.")
        names.append(CUSTOM)
    if not names:
        raise InputError("nothing to simulate: name at least one strategy or pass a model.")
    return tuple(names)


class _World:
    """Users, items, true utility and the dice; shared by every strategy."""

    def __init__(self, config: SimulationConfig):
        self.config = c = config
        rng = np.random.default_rng([c.seed, 0])
        mu_users = rng.dirichlet(np.ones(c.n_topics)) * c.user_concentration
        mu_items = rng.dirichlet(np.ones(c.n_topics)) * c.item_concentration
        self.prefs = rng.dirichlet(mu_users, size=c.n_users)
        self.attrs = rng.dirichlet(mu_items, size=c.n_items)
        noise = rng.normal(0.0, c.utility_noise, size=(c.n_users, c.n_items))
        mean = self.prefs @ self.attrs.T
        self.utility = np.clip(mean * np.exp(noise - c.utility_noise**2 / 2), 0.0, 1.0)
        self.examine = 1.0 / np.arange(1, c.k + 1) ** c.position_bias
        self.rows = np.arange(c.n_users)[:, None]
        self.ideal = _top(self.utility, c.k)
        self.pairs = (np.arange(c.n_users) if c.n_users <= JACCARD_USERS else np.sort(
            rng.choice(c.n_users, JACCARD_USERS, replace=False)))
        self.ideal_static = {"utility": float(self.utility[self.rows, self.ideal].mean()),
                             "jaccard": self.jaccard(self.ideal),
                             "gini": figures(self.counts(self.ideal))["gini"]}
        # the random startup, shared by every strategy
        start = np.random.default_rng([c.seed, 1])
        self.startup = []
        for rnd in range(1 - c.startup_rounds, 1):
            slates = _random_slates(start, c.n_users, c.n_items, c.k)
            self.startup.append((rnd, slates, self.click(slates, self.uniforms(rnd))))

    def uniforms(self, rnd: int) -> np.ndarray:
        """The dice of one round: a click happens when its uniform is below its probability."""
        offset = self.config.startup_rounds  # rounds start at 1 - startup_rounds
        return np.random.default_rng([self.config.seed, 2, rnd + offset]).random(
            (self.config.n_users, self.config.n_items))

    def click(self, slates: np.ndarray, uniforms: np.ndarray) -> np.ndarray:
        p = self.utility[self.rows, slates] * self.examine[: slates.shape[1]]
        return uniforms[self.rows, slates] < p

    def counts(self, slates: np.ndarray) -> np.ndarray:
        return np.bincount(slates.ravel(), minlength=self.config.n_items)

    def jaccard(self, slates: np.ndarray) -> float:
        """Mean Jaccard index over all pairs of (sampled) users' slates."""
        chosen = slates[self.pairs]
        shown = np.zeros((len(chosen), self.config.n_items))
        shown[np.arange(len(chosen))[:, None], chosen] = 1.0
        inter = shown @ shown.T
        sizes = shown.sum(axis=1)
        upper = np.triu_indices(len(chosen), 1)
        union = (sizes[:, None] + sizes[None, :] - inter)[upper]
        return float((inter[upper] / union).mean())

    def measure_ideal(self, uniforms: np.ndarray) -> dict[str, float]:
        return {**self.ideal_static, "ctr": float(self.click(self.ideal, uniforms).mean())}

    def measure(self, slates: np.ndarray, clicks: np.ndarray,
                ideal: dict[str, float]) -> dict[str, float]:
        exposure = figures(self.counts(slates))
        utility = float(self.utility[self.rows, slates].mean())
        jaccard = self.jaccard(slates)
        return {"ctr": float(clicks.mean()), "ctr_ideal": ideal["ctr"],
                "utility": utility, "utility_ideal": ideal["utility"],
                "utility_ratio": utility / ideal["utility"] if ideal["utility"] > 0 else np.nan,
                "jaccard": jaccard, "jaccard_ideal": ideal["jaccard"],
                "homogenization": jaccard - ideal["jaccard"],
                "gini": exposure["gini"], "gini_ideal": ideal["gini"],
                "top_share": exposure["top_share"], "coverage": exposure["coverage"]}


class _Arm:
    """One strategy's feedback loop: its logs, its model, its policy."""

    def __init__(self, name: str, config: SimulationConfig, world: _World,
                 model: Model | None):
        self.name, self.config, self.world, self.model = name, config, world, model
        index = STRATEGIES.index(name) if name in STRATEGIES else len(STRATEGIES)
        self.rng = np.random.default_rng([config.seed, 3, index])
        shape = (config.n_users, config.n_items)
        self.clicks = np.zeros(shape)  # clicks per cell, all rounds
        self.weighted = np.zeros(shape)  # clicks / max(propensity, ips_clip)
        self.n_logged = 0
        self.factors: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
        self.logged: list[tuple[int, np.ndarray, np.ndarray, np.ndarray]] = []
        for rnd, slates, clicks in world.startup:
            self.log(rnd, slates, clicks, np.full(slates.shape, config.k / config.n_items))

    def log(self, rnd: int, slates: np.ndarray, clicks: np.ndarray,
            propensity: np.ndarray) -> None:
        self.logged.append((rnd, slates, clicks, propensity))
        np.add.at(self.clicks, (self.world.rows, slates), clicks)
        weight = clicks / np.maximum(propensity, self.config.ips_clip)
        np.add.at(self.weighted, (self.world.rows, slates), weight)
        self.n_logged += 1

    def frame(self) -> pd.DataFrame:
        """The logs so far, one row per impression (the frame a custom model is given)."""
        k = self.config.k
        parts = [(np.full(s.size, rnd), np.repeat(np.arange(len(s)), k), s.ravel(),
                  np.tile(np.arange(k), len(s)), c.ravel().astype(np.int64), p.ravel())
                 for rnd, s, c, p in self.logged]
        columns = [np.concatenate(col) for col in zip(*parts, strict=True)]
        frame = pd.DataFrame(dict(zip(LOG_COLUMNS, columns, strict=True)))
        return frame.astype({"round": np.int64, "user": np.int64, "item": np.int64,
                             "position": np.int64, "click": np.int64,
                             "propensity": np.float64})

    def play(self, rnd: int, uniforms: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Show one round of slates, log what feeds back, retrain; the slates and clicks."""
        c, world = self.config, self.world
        ones = np.ones((c.n_users, c.k))
        if self.name == "ideal":
            slates, propensity = world.ideal, ones
        elif self.name == CUSTOM:
            slates, propensity = self.custom(rnd), ones
        elif self.name == "no-feedback":
            slates = _top(self.scores(self.weighted), c.k)
            shown = _random_slates(self.rng, c.n_users, c.n_items, c.k)
            clicks = world.click(slates, uniforms)
            self.log(rnd, shown, world.click(shown, uniforms), ones * c.k / c.n_items)
            return slates, clicks
        elif self.name in ("exploration", "ips"):
            target = self.weighted if self.name == "ips" else self.clicks
            slates, propensity = self.explore(self.scores(target))
        elif self.name == "diversity":
            slates, propensity = _mmr(self.scores(self.clicks), self.factors[1], c.k,
                                      c.mmr_lambda), ones
        else:
            slates, propensity = _top(self.scores(self.clicks), c.k), ones
        clicks = world.click(slates, uniforms)
        self.log(rnd, slates, clicks, propensity)
        return slates, clicks

    def scores(self, clicks: np.ndarray) -> np.ndarray:
        """Refit the built-in recommender on the logs so far; its score matrix."""
        c = self.config
        target = np.minimum(clicks / self.n_logged, 1.0)
        weight = 1.0 + c.click_weight * (clicks > 0)
        # the same starting factors for every strategy: differences are the policies'
        start = self.factors or _initial_factors(c)
        self.factors = _als(target, weight, c.regularization, start,
                            _ALS_FIRST if self.factors is None else _ALS_ROUND)
        users, items, bias = self.factors
        return users @ items.T + bias

    def explore(self, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Greedy slots, then ``explore_slots`` drawn uniformly from the items left."""
        c = self.config
        m = c.explore_slots
        exploit = _top(scores, c.k - m)
        keys = self.rng.random((c.n_users, c.n_items))
        keys[self.world.rows, exploit] = 2.0  # never drawn again
        drawn = np.argpartition(keys, m - 1, axis=1)[:, :m] if m else exploit[:, :0]
        chance = m / (c.n_items - (c.k - m)) if m else 1.0
        propensity = np.hstack([np.ones(exploit.shape), np.full(drawn.shape, chance)])
        return np.hstack([exploit, drawn]), propensity

    def custom(self, rnd: int) -> np.ndarray:
        c = self.config
        made = self.model(self.frame())
        users = np.arange(c.n_users)
        if callable(made):
            return _check_slates(made(users, c.k), c, rnd)
        if isinstance(made, np.ndarray | pd.DataFrame | list):
            scores = np.asarray(made)
            if scores.shape != (c.n_users, c.n_items) or not np.issubdtype(
                    scores.dtype, np.number):
                raise InputError(f"round {rnd}: the model returned an array of shape "
                                 f"{scores.shape} ({scores.dtype}); a score matrix must be "
                                 f"numbers of shape (n_users, n_items) = "
                                 f"({c.n_users}, {c.n_items}), or return a policy callable.")
            if not np.isfinite(scores).all():
                raise InputError(f"round {rnd}: the model's score matrix holds "
                                 f"{int((~np.isfinite(scores)).sum())} NaN or infinite "
                                 "scores; every item needs a finite score.")
            return _top(scores.astype(float), c.k)
        raise InputError(f"round {rnd}: the model returned {type(made).__name__}; it must "
                         "return a policy callable policy(users, k) -> item ids of shape "
                         "(len(users), k), or a score matrix of shape (n_users, n_items).")


def _check_slates(slates: object, config: SimulationConfig, rnd: int) -> np.ndarray:
    """A custom policy's slates as an int array, or one InputError saying what is wrong."""
    where = f"round {rnd}: the model's policy(users, k={config.k})"
    expected = (config.n_users, config.k)
    try:
        array = np.asarray(slates)
    except (TypeError, ValueError) as exc:
        raise InputError(f"{where} returned something that is not an array: {exc}") from exc
    if array.shape != expected:
        raise InputError(f"{where} returned shape {array.shape}; expected {expected}: one "
                         "slate of k item ids per user.")
    if not np.issubdtype(array.dtype, np.integer):
        raise InputError(f"{where} returned {array.dtype} values; item ids must be "
                         "integers (a score matrix is returned by the model itself, not by "
                         "the policy).")
    bad = (array < 0) | (array >= config.n_items)
    if bad.any():
        raise InputError(f"{where} returned {int(bad.sum())} item ids outside "
                         f"0..{config.n_items - 1}, e.g. {int(array[bad][0])}.")
    ordered = np.sort(array, axis=1)
    repeated = (ordered[:, 1:] == ordered[:, :-1]).any(axis=1)
    if repeated.any():
        user = int(np.flatnonzero(repeated)[0])
        raise InputError(f"{where} returned {int(repeated.sum())} slates that show an item "
                         f"twice, e.g. user {user}: {array[user].tolist()}.")
    return array.astype(np.int64)


def _top(scores: np.ndarray, k: int) -> np.ndarray:
    """Each row's k best columns, best first (ties: lower index first)."""
    if k == 0:
        return np.empty((len(scores), 0), dtype=np.int64)
    if k >= scores.shape[1]:
        return np.argsort(-scores, axis=1, kind="stable")[:, :k]
    part = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    part.sort(axis=1)  # ties resolved by index, not by argpartition's internals
    order = np.argsort(-np.take_along_axis(scores, part, axis=1), axis=1, kind="stable")
    return np.take_along_axis(part, order, axis=1)


def _random_slates(rng: np.random.Generator, n_users: int, n_items: int, k: int
                   ) -> np.ndarray:
    """k distinct items per user, uniformly at random."""
    return _top(rng.random((n_users, n_items)), k)


def _initial_factors(config: SimulationConfig) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng([config.seed, 4])
    return (rng.normal(0.0, 0.1, (config.n_users, config.n_factors)),
            rng.normal(0.0, 0.1, (config.n_items, config.n_factors)), np.zeros(config.n_items))


def _als(target: np.ndarray, weight: np.ndarray, l2: float,
         start: tuple[np.ndarray, np.ndarray, np.ndarray], sweeps: int,
         ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Weighted ALS for ``target ~ users @ items.T + bias``: (users, items, item bias)."""
    users, items, bias = start
    n_users, n_factors = users.shape
    penalty = np.full(n_factors + 1, l2)
    penalty[-1] = l2 / 100  # the item bias is the popularity the data shows: barely shrunk
    for _ in range(sweeps):
        users = _least_squares(weight, items, target - bias, np.full(n_factors, l2))
        both = _least_squares(weight.T, np.hstack([users, np.ones((n_users, 1))]), target.T,
                              penalty)
        items, bias = both[:, :-1], both[:, -1]
    return users, items, bias


def _least_squares(weight: np.ndarray, x: np.ndarray, target: np.ndarray,
                   penalty: np.ndarray) -> np.ndarray:
    """Row r: argmin_y sum_j weight[r, j] (target[r, j] - x[j] . y) ** 2 + penalty . y ** 2,
    all rows at once (one matrix product builds every row's normal equations)."""
    f = x.shape[1]
    outer = (x[:, :, None] * x[:, None, :]).reshape(len(x), f * f)
    lhs = (weight @ outer).reshape(-1, f, f) + np.diag(penalty)
    rhs = (weight * target) @ x
    return np.linalg.solve(lhs, rhs[:, :, None])[:, :, 0]


def _mmr(scores: np.ndarray, item_vectors: np.ndarray, k: int, lam: float) -> np.ndarray:
    """Maximal marginal relevance over each user's top ``_MMR_POOL * k`` items: pick, one slot
    at a time, the item maximizing lam * relevance - (1 - lam) * max cosine to those picked."""
    n_users, n_items = scores.shape
    pool = _top(scores, min(n_items, _MMR_POOL * k))
    relevance = np.take_along_axis(scores, pool, axis=1)
    low, high = relevance.min(axis=1, keepdims=True), relevance.max(axis=1, keepdims=True)
    relevance = (relevance - low) / np.where(high > low, high - low, 1.0)
    unit = item_vectors / np.maximum(np.linalg.norm(item_vectors, axis=1, keepdims=True),
                                     1e-12)
    vectors = unit[pool]  # (users, pool, factors)
    rows = np.arange(n_users)
    nearest = np.zeros(pool.shape)  # highest similarity to an item already picked
    free = np.ones(pool.shape, dtype=bool)
    picked = np.empty((n_users, k), dtype=np.int64)
    for slot in range(k):
        value = np.where(free, lam * relevance - (1 - lam) * nearest, -np.inf)
        best = value.argmax(axis=1)
        picked[:, slot] = pool[rows, best]
        free[rows, best] = False
        similarity = np.einsum("upf,uf->up", vectors, vectors[rows, best])
        nearest = np.maximum(nearest, similarity)
    return picked
