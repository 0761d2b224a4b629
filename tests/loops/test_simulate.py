"""The feedback-loop simulation: the planted effect (Chaney et al. 2018) shows, the control
without feedback does not show it, the mitigations compare as they do over every seed tried,
and bad configs and bad custom models are refused with one message.

Every comparison below held on all of seeds 0-11 with the default config when it was written;
the tests run four of them. Figures are the mean of the last three rounds, so that one
round's noise does not decide.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from failwell.errors import InputError
from failwell.loops.simulate import (
    DEFAULT_STRATEGIES,
    LOG_COLUMNS,
    METRICS,
    STRATEGIES,
    SimulationConfig,
    simulate,
)

SEEDS = (0, 1, 2, 3)
SMALL = {"n_users": 40, "n_items": 60, "n_rounds": 4, "k": 5, "startup_rounds": 2}


@pytest.fixture(scope="module")
def runs():
    return {seed: simulate(SimulationConfig(seed=seed), strategies=STRATEGIES)
            for seed in SEEDS}


def curve(result, metric: str) -> pd.DataFrame:
    return result.rounds.pivot(index="round", columns="strategy", values=metric)


def late(result, metric: str) -> pd.Series:
    return curve(result, metric).iloc[-3:].mean()


def rise(result, metric: str) -> pd.Series:
    c = curve(result, metric)
    return c.iloc[-3:].mean() - c.iloc[0]


@pytest.mark.parametrize("seed", SEEDS)
def test_the_loop_homogenizes_beyond_the_ideal_and_the_control_does_not(runs, seed):
    result = runs[seed]
    homog = late(result, "homogenization")
    assert rise(result, "homogenization")["baseline"] > 0.03
    assert homog["baseline"] > 0.03  # users' slates overlap more than the ideal's do
    # the control learns from random exposure: no rise, and it stays near the ideal
    assert rise(result, "homogenization")["no-feedback"] < rise(result, "homogenization")[
        "baseline"] - 0.02
    assert abs(homog["no-feedback"]) < 0.05
    assert (curve(result, "homogenization")["ideal"] == 0).all()


@pytest.mark.parametrize("seed", SEEDS)
def test_the_loop_concentrates_exposure(runs, seed):
    result = runs[seed]
    gini, top = late(result, "gini"), late(result, "top_share")
    assert rise(result, "gini")["baseline"] > 0.02
    assert gini["baseline"] > gini["ideal"] + 0.01
    assert gini["baseline"] > gini["no-feedback"] + 0.01
    assert top["baseline"] > top["no-feedback"] + 0.05
    assert late(result, "coverage")["baseline"] < late(result, "coverage")["no-feedback"]


@pytest.mark.parametrize("seed", SEEDS)
def test_utility_falls_short_of_the_ideal_while_the_proxy_looks_fine(runs, seed):
    result = runs[seed]
    utility, ctr = late(result, "utility_ratio"), late(result, "ctr")
    assert utility["baseline"] < 0.9
    assert utility["ideal"] == pytest.approx(1.0)
    # the click-through rate does not flag the loop: no worse than the control's
    assert ctr["baseline"] > ctr["no-feedback"] - 0.01


@pytest.mark.parametrize("seed", SEEDS)
def test_the_mitigations_compare_the_same_way_on_every_seed(runs, seed):
    result = runs[seed]
    gini, homog = late(result, "gini"), late(result, "homogenization")
    utility, coverage = late(result, "utility_ratio"), late(result, "coverage")
    # exploration: less concentration and homogenization, more coverage, a little utility
    assert gini["exploration"] < gini["baseline"] - 0.02
    assert homog["exploration"] < homog["baseline"]
    assert coverage["exploration"] > coverage["baseline"] + 0.2
    assert utility["exploration"] < utility["baseline"]
    # ips: lower still, and it pays for it in utility (the variance of its weights)
    assert gini["ips"] < gini["exploration"]
    assert homog["ips"] < homog["exploration"]
    assert utility["ips"] < utility["exploration"]
    # diversity (MMR within a slate) makes users' slates *more* alike, not less
    assert homog["diversity"] > homog["baseline"]
    assert gini["diversity"] > gini["baseline"]


def test_the_default_run_is_fast_and_complete(runs):
    result = runs[0]
    assert result.seconds < 20  # a few seconds for six strategies on one core
    assert list(result.rounds.columns) == ["round", "strategy", *METRICS]
    assert len(result.rounds) == 20 * len(STRATEGIES)
    assert not result.rounds[list(METRICS)].isna().any().any()
    summary = result.summary()
    assert list(summary.index) == list(STRATEGIES)
    assert summary.loc["baseline", "gini"] == curve(result, "gini")["baseline"].iloc[-1]
    data = json.loads(json.dumps(result.to_dict(), allow_nan=False))
    assert data["config"]["n_users"] == 200 and len(data["rounds"]) == 20 * len(STRATEGIES)
    assert set(data["summary"]) == set(STRATEGIES)


def test_the_guide_example_runs():
    """The example in docs/loop-simulation.md, executed as written."""
    guide = (Path(__file__).resolve().parents[2] / "docs" / "loop-simulation.md").read_text()
    code = guide.split("```python")[1].split("```")[0]
    namespace: dict = {}
    exec(compile(code, "loop-simulation.md", "exec"), namespace)
    assert list(namespace["final"].index) == [
        "baseline", "exploration", "ips", "diversity", "no-feedback"]
    assert list(namespace["logs"].columns) == list(LOG_COLUMNS)


def test_the_same_seed_gives_the_same_result_and_progress_counts_rounds():
    seen: list[int] = []
    first = simulate(SimulationConfig(**SMALL, seed=7), progress=seen.append)
    second = simulate(SimulationConfig(**SMALL, seed=7))
    other = simulate(SimulationConfig(**SMALL, seed=8))
    assert seen == [1, 2, 3, 4]
    assert first.strategies == DEFAULT_STRATEGIES
    pd.testing.assert_frame_equal(first.rounds, second.rounds)
    for name in DEFAULT_STRATEGIES:
        pd.testing.assert_frame_equal(first.logs[name], second.logs[name])
    assert not first.rounds.equals(other.rounds)


def test_strategies_share_the_world_and_the_dice():
    """A strategy's figures do not depend on which others run, and exploration with
    epsilon 0 is the baseline: any difference between strategies is the policy's."""
    config = SimulationConfig(**SMALL, epsilon=0.0)
    together = simulate(config, strategies=("baseline", "exploration", "ideal"))
    alone = simulate(config, strategies=("baseline",))
    rows = together.rounds.set_index(["strategy", "round"])[list(METRICS)]
    assert rows.loc["baseline"].equals(alone.rounds.set_index("round")[list(METRICS)])
    assert rows.loc["exploration"].equals(rows.loc["baseline"])


def test_logs_carry_exact_propensities():
    config = SimulationConfig(**SMALL, epsilon=0.4)  # 2 random slots of 5
    logs = simulate(config, strategies=("exploration",)).logs["exploration"]
    assert list(logs.columns) == list(LOG_COLUMNS)
    startup = logs[logs["round"] <= 0]
    assert sorted(startup["round"].unique()) == [-1, 0]
    assert np.allclose(startup["propensity"], 5 / 60)
    played = logs[logs["round"] > 0]
    assert (played[played["position"] < 3]["propensity"] == 1.0).all()
    assert np.allclose(played[played["position"] >= 3]["propensity"], 2 / (60 - 3))
    per_slate = logs.groupby(["round", "user"])["item"]
    assert (per_slate.nunique() == 5).all() and (per_slate.size() == 5).all()
    assert set(logs["click"].unique()) <= {0, 1}


def test_a_custom_model_runs_next_to_the_built_in_ones():
    calls: list[pd.DataFrame] = []

    def popularity(logs: pd.DataFrame) -> np.ndarray:
        calls.append(logs)
        clicks = logs.groupby("item")["click"].sum().reindex(range(60), fill_value=0)
        return np.tile(clicks.to_numpy(float) + np.arange(60) * 1e-6, (40, 1))

    result = simulate(SimulationConfig(**SMALL), strategies=("baseline",), model=popularity)
    assert result.strategies == ("baseline", "custom")
    assert len(calls) == 4
    assert list(calls[0].columns) == list(LOG_COLUMNS)
    assert calls[0]["round"].max() == 0 and len(calls[-1]) == 40 * 5 * (2 + 3)
    custom = curve(result, "jaccard")["custom"]
    assert (custom == 1.0).all()  # one slate for everyone: the most homogeneous there is
    assert len(result.logs["custom"]) == 40 * 5 * (2 + 4)


def test_a_custom_policy_callable_is_used_as_given():
    def model(logs: pd.DataFrame):
        def policy(users: np.ndarray, k: int) -> np.ndarray:
            return (users[:, None] + np.arange(k)[None, :]) % 60

        return policy

    result = simulate(SimulationConfig(**SMALL), strategies=(), model=model)
    logs = result.logs["custom"]
    played = logs[logs["round"] == 1]
    assert (played["item"].to_numpy() == (played["user"] + played["position"]) % 60).all()
    assert (played["propensity"] == 1.0).all()
    assert curve(result, "coverage")["custom"].iloc[0] == pytest.approx(44 / 60)
    slates = [{(u + j) % 60 for j in range(5)} for u in range(40)]
    jaccard = [len(a & b) / len(a | b) for i, a in enumerate(slates) for b in slates[i + 1:]]
    assert curve(result, "jaccard")["custom"].iloc[0] == pytest.approx(np.mean(jaccard))
    shown = np.bincount(np.array([sorted(s) for s in slates]).ravel(), minlength=60)
    assert curve(result, "top_share")["custom"].iloc[0] == pytest.approx(
        np.sort(shown)[::-1][:6].sum() / 200)


def _policy_returning(value):
    return lambda logs: (lambda users, k: value)


@pytest.mark.parametrize(("model", "message"), [
    (_policy_returning(np.zeros((40, 4), dtype=int)), r"shape \(40, 4\); expected \(40, 5\)"),
    (_policy_returning(np.zeros((39, 5), dtype=int)), r"shape \(39, 5\)"),
    (_policy_returning(np.tile(np.arange(55, 60), (40, 1)) + 1), r"outside 0\.\.59, e\.g\. 60"),
    (_policy_returning(np.tile(np.arange(-1, 4), (40, 1))),
     r"40 item ids outside 0\.\.59, e\.g\. -1"),
    (_policy_returning(np.tile([1, 2, 3, 3, 4], (40, 1))),
     r"40 slates that show an item twice, e\.g\. user 0: \[1, 2, 3, 3, 4\]"),
    (_policy_returning(np.tile(np.arange(5.0), (40, 1))), "item ids must be integers"),
    (_policy_returning([[1, 2]] * 39 + [[1]]), "not an array|shape"),
    (lambda logs: np.full((40, 60), np.nan), "NaN or infinite"),
    (lambda logs: np.zeros((40, 59)), r"shape \(40, 59\)"),
    (lambda logs: None, "returned NoneType"),
    (lambda logs: "top-5", "returned str"),
    ("not a model", "model must be a callable"),
])
def test_bad_custom_models_are_refused_with_one_message(model, message):
    with pytest.raises(InputError, match=message):
        simulate(SimulationConfig(**SMALL), strategies=(), model=model)


@pytest.mark.parametrize(("options", "message"), [
    ({"n_users": 1}, "n_users must be at least 2"),
    ({"n_items": 0}, "n_items must be at least 1"),
    ({"k": 0}, "k must be at least 1"),
    ({"n_rounds": 2.5}, "n_rounds must be a whole number"),
    ({"n_rounds": True}, "n_rounds must be a whole number"),
    ({"seed": -1}, "seed must be at least 0"),
    ({"startup_rounds": 0}, "startup_rounds must be at least 1"),
    ({"k": 61}, r"k \(the slate size, 61\) cannot exceed n_items \(60\)"),
    ({"epsilon": 1.5}, "epsilon must be between 0 and 1"),
    ({"mmr_lambda": -0.1}, "mmr_lambda must be between 0 and 1"),
    ({"ips_clip": 0.0}, "ips_clip must be above 0"),
    ({"ips_clip": 2.0}, "ips_clip is a smallest propensity"),
    ({"utility_noise": math.nan}, "utility_noise must be a finite number"),
    ({"regularization": "1"}, "regularization must be a finite number"),
    ({"n_users": 5_000, "n_items": 5_000}, r"n_users x n_items is 25,000,000; at most"),
    ({"n_users": 2_000, "n_items": 5_000, "n_rounds": 50, "k": 5},
     r"n_users x n_items x \(n_rounds \+ startup_rounds\) is 520,000,000"),
    ({"n_users": 10_000, "n_items": 1_000, "k": 1_000, "n_rounds": 1},
     r"n_users x k x \(n_rounds \+ startup_rounds\) is 30,000,000"),
])
def test_bad_configs_are_refused(options, message):
    with pytest.raises(InputError, match=message):
        SimulationConfig(**{**SMALL, **options})


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"strategies": ("baseline", "explore")}, "unknown strategy 'explore' \\(did you mean"),
    ({"strategies": ("ips", "ips")}, "lists one twice"),
    ({"strategies": ()}, "nothing to simulate"),
    ({"progress": 3}, "progress must be a callable"),
])
def test_bad_arguments_are_refused(kwargs, message):
    with pytest.raises(InputError, match=message):
        simulate(SimulationConfig(**SMALL), **kwargs)
