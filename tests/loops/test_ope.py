"""Off-policy evaluation (failwell.loops.ope): the intervals cover a known truth in simulation,
the point estimates are obp's, and the figures on the Open Bandit Dataset sample are what an
independent computation gives.

Open Bandit Dataset: ZOZO, Inc., CC BY 4.0; Saito, Aihara, Matsutani, Narita, "Open Bandit
Dataset and Pipeline", NeurIPS 2021 Datasets and Benchmarks.
"""

from __future__ import annotations

import contextlib
import io
import os
import subprocess
import sys
from pathlib import Path
from statistics import NormalDist

import numpy as np
import pandas as pd
import pytest

from failwell.errors import InputError
from failwell.loops import ope

REPO = Path(__file__).resolve().parents[2]
OBD = REPO.parent / "shared" / "data" / "obd"
DOC = REPO / "docs" / "ope.md"
Z95 = NormalDist().inv_cdf(0.975)
N_ITEMS = 80


# -- a contextual bandit whose candidate value is known exactly -------------------------------

class World:
    """200 context types drawn uniformly, 5 actions, logistic click probabilities.

    The logging policy is a softmax over unrelated scores mixed with 30 % uniform (so every
    action has probability >= 0.06); the candidate is 0.2-greedy on a noisy copy of the true
    click probabilities. Contexts are uniform over a finite set, so the candidate's value is an
    exact average, not an estimate.
    """

    def __init__(self, seed: int = 0, m: int = 200, k: int = 5, d: int = 3):
        rng = np.random.default_rng(seed)
        self.x = rng.normal(size=(m, d))
        theta, bias = rng.normal(size=(d, k)), rng.normal(-1.0, 0.5, k)
        self.p = 1 / (1 + np.exp(-(self.x @ theta + bias)))
        self.logging = 0.7 * ope.softmax(self.x @ rng.normal(size=(d, k))) + 0.3 / k
        self.candidate = ope.from_scores(self.p + rng.normal(0, 0.05, self.p.shape), k=1,
                                         epsilon=0.2)
        self.truth = float((self.candidate * self.p).sum(axis=1).mean())

    def log(self, policy: np.ndarray, runs: int, n: int, seed: int):
        """``runs`` independent logs of ``n`` rounds each: context ids, actions, rewards."""
        rng = np.random.default_rng(seed)
        ctx = rng.integers(0, self.p.shape[0], (runs, n))
        cum = policy.cumsum(axis=1)[ctx]
        act = np.minimum((rng.random((runs, n, 1)) > cum).sum(axis=2), self.p.shape[1] - 1)
        rew = (rng.random((runs, n)) < self.p[ctx, act]).astype(float)
        return ctx, act, rew


RUNS, ROUNDS = 500, 3000


@pytest.fixture(scope="module")
def world() -> World:
    return World()


@pytest.fixture(scope="module")
def replications(world):
    """Every estimator (normal intervals) on RUNS logs, plus IPS with the propensities recorded
    as uniform although the logging policy was not."""
    ctx, act, rew = world.log(world.logging, RUNS, ROUNDS, seed=1)
    # DR with a deliberately poor reward model: per-action means, blind to the context
    q = np.broadcast_to(world.p.mean(axis=0), world.p.shape)
    out: dict[str, list[ope.Estimate]] = {"ips": [], "snips": [], "dr": [], "wrong": []}
    for c, a, r in zip(ctx, act, rew, strict=True):
        for e in ope.estimate(r, a, world.logging[c, a], world.candidate[c],
                              estimated_rewards=q[c]):
            out[e.estimator].append(e)
        uniform_lie = np.full(ROUNDS, 1 / world.p.shape[1])
        out["wrong"] += ope.estimate(r, a, uniform_lie, world.candidate[c], estimators=["ips"])
    return out


def coverage(estimates: list[ope.Estimate], truth: float) -> float:
    return float(np.mean([e.low <= truth <= e.high for e in estimates]))


def test_the_simulated_truth_is_what_the_candidate_earns_online(world):
    """The analytic value is right (running the candidate itself gives it) and the logging
    policy earns something clearly different, so OPE has work to do."""
    _, _, online = world.log(world.candidate, 20, 20_000, seed=2)
    se = online.std() / np.sqrt(online.size)
    assert abs(online.mean() - world.truth) < 4 * se
    logging_value = (world.logging * world.p).sum(axis=1).mean()
    assert world.truth - logging_value > 0.2


@pytest.mark.parametrize("name", ["ips", "snips", "dr"])
def test_95_percent_intervals_cover_the_true_value(replications, world, name):
    cov = coverage(replications[name], world.truth)
    assert 0.92 <= cov <= 0.98, (name, cov)
    values = np.array([e.value for e in replications[name]])
    mc_error = values.std(ddof=1) / np.sqrt(values.size)
    if name != "snips":  # IPS and DR are unbiased; SNIPS only asymptotically
        assert abs(values.mean() - world.truth) < 3 * mc_error, (name, values.mean())
    else:
        assert abs(values.mean() - world.truth) < 0.01


def test_snips_and_dr_are_less_variable_than_ips(replications):
    spread = {k: np.std([e.value for e in v]) for k, v in replications.items()}
    assert spread["snips"] < 0.8 * spread["ips"]
    assert spread["dr"] < 0.8 * spread["ips"]


def test_wrong_propensities_make_ips_coverage_collapse(replications, world):
    """The control: the same logs with propensities recorded as uniform. IPS is then biased
    and its intervals, as narrow as ever, almost never hold the truth."""
    assert coverage(replications["wrong"], world.truth) < 0.2
    values = np.array([e.value for e in replications["wrong"]])
    assert abs(values.mean() - world.truth) > 10 * values.std(ddof=1) / np.sqrt(values.size)


def test_bootstrap_intervals_cover_and_agree_with_normal_ones(world):
    ctx, act, rew = world.log(world.logging, 100, 1000, seed=3)
    q = np.broadcast_to(world.p.mean(axis=0), world.p.shape)
    hits = {"ips": 0, "snips": 0, "dr": 0}
    for i, (c, a, r) in enumerate(zip(ctx, act, rew, strict=True)):
        args = (r, a, world.logging[c, a], world.candidate[c])
        boot = ope.estimate(*args, estimated_rewards=q[c], method="bootstrap",
                            n_bootstrap=400, seed=i)
        for e in boot:
            hits[e.estimator] += e.low <= world.truth <= e.high
        if i == 0:
            normal = ope.estimate(*args, estimated_rewards=q[c])
            for b, z in zip(boot, normal, strict=True):
                assert b.value == z.value
                assert 0.8 < (b.high - b.low) / (z.high - z.low) < 1.25, (b, z)
    for name, hit in hits.items():
        assert 0.88 <= hit / 100 <= 0.99, (name, hit)


def test_dr_with_a_cross_fitted_reward_model_is_unbiased_and_narrower(world):
    ctx, act, rew = world.log(world.logging, 50, ROUNDS, seed=4)
    ips, dr = [], []
    for i, (c, a, r) in enumerate(zip(ctx, act, rew, strict=True)):
        q = ope.fit_reward_model(world.x[c], a, r, world.p.shape[1], seed=i)
        assert q.shape == (ROUNDS, world.p.shape[1]) and ((q > 0) & (q < 1)).all()
        e_ips, e_dr = ope.estimate(r, a, world.logging[c, a], world.candidate[c],
                                   estimated_rewards=q, estimators=["ips", "dr"])
        ips.append(e_ips)
        dr.append(e_dr)
    values = np.array([e.value for e in dr])
    assert abs(values.mean() - world.truth) < 3 * values.std(ddof=1) / np.sqrt(values.size)
    width = {k: np.mean([e.high - e.low for e in v]) for k, v in (("ips", ips), ("dr", dr))}
    assert width["dr"] < 0.9 * width["ips"], width


def test_cross_fitting_predicts_each_row_from_a_model_that_did_not_see_it():
    """Pure noise rewards: an in-sample model would track them; cross-fitted predictions
    cannot, so their correlation with the logged reward stays near zero."""
    rng = np.random.default_rng(5)
    n = 400
    context = rng.normal(size=(n, 40))  # many features, few rows: easy to overfit
    action = rng.integers(0, 3, n)
    reward = rng.normal(size=n)
    q = ope.fit_reward_model(context, action, reward, 3)
    from sklearn.linear_model import Ridge

    eye = np.eye(3)[action]
    in_sample = Ridge(alpha=1.0).fit(np.hstack([context, eye]), reward)
    fitted = in_sample.predict(np.hstack([context, eye]))
    assert np.corrcoef(fitted, reward)[0, 1] > 0.25
    assert np.corrcoef(q[np.arange(n), action], reward)[0, 1] < 0.05


# -- the same formulas as obp --------------------------------------------------------------

def random_inputs(seed: int = 0, n: int = 2000, k: int = 6, positions: int = 3):
    rng = np.random.default_rng(seed)
    return {
        "reward": rng.binomial(1, 0.3, n).astype(float),
        "action": rng.integers(0, k, n),
        "propensity": rng.uniform(0.05, 0.6, n),
        "action_dist": rng.dirichlet(np.ones(k), (n, positions)).transpose(0, 2, 1),
        "position": rng.integers(0, positions, n),
        "estimated_rewards": rng.uniform(0, 1, (n, k, positions)),
    }


def test_point_estimates_follow_the_published_formulas():
    """IPS, SNIPS, DR written out independently (Horvitz-Thompson, Swaminathan & Joachims
    2015, Dudik et al. 2014), one line each."""
    d = random_inputs()
    rows = np.arange(d["reward"].size)
    pi = d["action_dist"][rows, :, d["position"]]
    q = d["estimated_rewards"][rows, :, d["position"]]
    w = pi[rows, d["action"]] / d["propensity"]
    r = d["reward"]
    expected = {
        "ips": np.mean(w * r),
        "snips": np.sum(w * r) / np.sum(w),
        "dr": np.mean((pi * q).sum(axis=1) + w * (r - q[rows, d["action"]])),
    }
    got = {e.estimator: e for e in ope.estimate(**d)}
    for name, value in expected.items():
        assert got[name].value == pytest.approx(value, rel=0, abs=1e-12), name
    assert got["ips"].effective_sample_size == pytest.approx(w.sum() ** 2 / (w @ w))
    assert got["ips"].max_weight == pytest.approx(w.max())
    # the intervals: CLT on the per-round terms, SNIPS through its linearisation
    se_ips = np.std(w * r, ddof=1) / np.sqrt(r.size)
    assert got["ips"].high - got["ips"].value == pytest.approx(Z95 * se_ips)
    se_snips = np.std(w * (r - expected["snips"]) / w.mean(), ddof=1) / np.sqrt(r.size)
    assert got["snips"].value - got["snips"].low == pytest.approx(Z95 * se_snips)


def _import_obp():
    """obp 0.4.1 from wherever it is installed: the venv, or a --no-deps --target folder
    (FAILWELL_OBP_PATH, default /tmp/obp-lib) appended so our numpy/scikit-learn win."""
    path = os.environ.get("FAILWELL_OBP_PATH", "/tmp/obp-lib")
    if Path(path).is_dir() and path not in sys.path:
        sys.path.append(path)
    return pytest.importorskip("obp.ope", reason="obp is not installed")


def test_point_estimates_equal_obp():
    obp_ope = _import_obp()
    for seed, positions in ((0, 3), (1, 1)):
        d = random_inputs(seed, positions=positions)
        common = {"reward": d["reward"], "action": d["action"], "pscore": d["propensity"],
                  "action_dist": d["action_dist"], "position": d["position"]}
        theirs = {
            "ips": obp_ope.InverseProbabilityWeighting().estimate_policy_value(**common),
            "snips": obp_ope.SelfNormalizedInverseProbabilityWeighting()
            .estimate_policy_value(**common),
            "dr": obp_ope.DoublyRobust().estimate_policy_value(
                **common, estimated_rewards_by_reg_model=d["estimated_rewards"]),
        }
        for e in ope.estimate(**d):
            assert abs(e.value - theirs[e.estimator]) < 1e-9, (e.estimator, positions)


# -- the Open Bandit Dataset sample --------------------------------------------------------

def load_obd(policy: str) -> pd.DataFrame:
    path = OBD / policy / "all.csv"
    if not path.exists():
        pytest.skip(f"Open Bandit Dataset sample missing at {path}")
    return pd.read_csv(path, index_col=0)


def arrays(logs: pd.DataFrame):
    return (logs["click"].to_numpy(float), logs["item_id"].to_numpy(),
            logs["propensity_score"].to_numpy(), logs["position"].to_numpy() - 1)


def normal_interval(terms: np.ndarray) -> tuple[float, float, float]:
    mean = terms.mean()
    half = Z95 * terms.std(ddof=1) / np.sqrt(terms.size)
    return mean, mean - half, mean + half


def figure(value: float, low: float, high: float) -> str:
    """How docs/ope.md prints an estimate."""
    return f"{value:.4f} [{low:.4f}, {high:.4f}]"


def test_uniform_policy_on_uniform_logs_is_the_logged_click_rate():
    logs = load_obd("random")
    r, a, p, pos = arrays(logs)
    ips, snips = ope.estimate(r, a, p, ope.uniform(r.size, N_ITEMS), position=pos,
                              estimators=["ips", "snips"])
    ctr = logs["click"].sum() / len(logs)
    assert ips.value == ctr and snips.value == ctr  # every weight is exactly 1
    assert ips.effective_sample_size == r.size and ips.max_weight == 1.0
    _, low, high = normal_interval(logs["click"].to_numpy(float))
    assert (ips.low, ips.high) == pytest.approx((low, high), rel=1e-12)
    (boot,) = ope.estimate(r, a, p, ope.uniform(r.size, N_ITEMS), estimators=["ips"],
                           method="bootstrap", n_bootstrap=2000)
    assert boot.low < ctr < boot.high
    assert 0.85 < (boot.high - boot.low) / (high - low) < 1.15
    assert figure(ctr, low, high) in DOC.read_text()


def test_uniform_policy_from_thompson_sampling_logs_agrees_with_its_own_run():
    """The two policies ran side by side: the uniform policy's value estimated from the
    Thompson-sampling logs must agree with what uniform-random actually earned."""
    rnd, bts = load_obd("random"), load_obd("bts")
    r, a, p, pos = arrays(bts)
    ips, snips = ope.estimate(r, a, p, ope.uniform(r.size, N_ITEMS), position=pos,
                              estimators=["ips", "snips"])
    w = (1 / N_ITEMS) / bts["propensity_score"].to_numpy()
    value, low, high = normal_interval(w * bts["click"].to_numpy(float))
    assert ips.value == pytest.approx(value, rel=1e-12)
    assert (ips.low, ips.high) == pytest.approx((low, high), rel=1e-12)
    assert ips.effective_sample_size < 0.05 * r.size  # heavy weights: ~3 % of the log counts
    online, _, online_high = normal_interval(rnd["click"].to_numpy(float))
    se = np.hypot((high - low) / (2 * Z95), (online_high - online) / Z95)
    assert abs(ips.value - online) < Z95 * se, (ips.value, online)
    assert abs(snips.value - ips.value) < Z95 * se
    text = DOC.read_text()
    assert figure(value, low, high) in text and f"{ips.effective_sample_size:,.0f}" in text


def top_items(clicks: np.ndarray, shows: np.ndarray, k: int) -> set[int]:
    """The k best click rates, ties to the lower item id, written without numpy sorting."""
    rate = [c / max(s, 1) for c, s in zip(clicks, shows, strict=True)]
    return set(sorted(range(len(rate)), key=lambda i: (-rate[i], i))[:k])


def test_a_learned_top_10_candidate_on_held_out_rounds():
    """Top 10 items by first-half click rate, evaluated on the second half of the week."""
    logs = load_obd("random")
    half = len(logs) // 2
    first, second = logs.iloc[:half], logs.iloc[half:]
    assert first["timestamp"].max() < second["timestamp"].min()
    clicks = first.groupby("item_id")["click"].sum().reindex(range(N_ITEMS), fill_value=0)
    shows = first["item_id"].value_counts().reindex(range(N_ITEMS), fill_value=0)
    top = top_items(clicks.to_numpy(), shows.to_numpy(), 10)

    r, a, p, pos = arrays(second)
    rate = clicks.to_numpy() / np.maximum(shows.to_numpy(), 1)
    candidate = ope.from_scores(np.broadcast_to(rate, (r.size, N_ITEMS)), k=10)
    context = pd.get_dummies(second.filter(like="user_feature_")).to_numpy(float)
    q = ope.fit_reward_model(context, a, r, N_ITEMS, position=pos)
    got = {e.estimator: e for e in ope.estimate(r, a, p, candidate, position=pos,
                                                estimated_rewards=q)}

    in_top = second["item_id"].isin(top).to_numpy()
    click = second["click"].to_numpy(float)
    weight = in_top * (1 / 10) / 0.0125  # 8 on the candidate's items, 0 elsewhere
    value, low, high = normal_interval(weight * click)
    assert (got["ips"].value, got["ips"].low, got["ips"].high) == pytest.approx(
        (value, low, high), rel=1e-12)
    assert got["snips"].value == pytest.approx(click[in_top].mean(), rel=1e-12)
    assert got["ips"].effective_sample_size == pytest.approx(in_top.sum())
    rows = np.arange(r.size)
    dr_terms = q[:, sorted(top)].mean(axis=1) + weight * (click - q[rows, a])
    assert got["dr"].value == pytest.approx(dr_terms.mean(), rel=1e-12)
    # the honest reading: the interval is wide and includes the uniform policy's click rate
    assert got["ips"].low < logs["click"].mean() < got["ips"].high
    assert figure(value, low, high) in DOC.read_text()


def test_the_doc_example_runs_and_prints_what_the_doc_shows(monkeypatch):
    load_obd("random")
    text = DOC.read_text()
    code = text.split("```python")[1].split("```")[0]
    shown = text.split("```text")[1].split("```")[0].strip()
    monkeypatch.chdir(REPO)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code, "ope.md", "exec"), {})
    assert out.getvalue().strip() == shown


# -- candidate policies ----------------------------------------------------------------------

def test_candidate_policies_are_distributions_with_the_promised_shape():
    scores = np.array([[0.1, 0.9, 0.5, 0.9], [3.0, 1.0, 2.0, 0.0]])
    greedy = ope.from_scores(scores)
    assert greedy.tolist() == [[0, 1, 0, 0], [1, 0, 0, 0]]  # tie: lower action code
    top2 = ope.from_scores(scores, k=2, epsilon=0.2)
    np.testing.assert_allclose(top2, [[0.05, 0.45, 0.05, 0.45], [0.45, 0.05, 0.45, 0.05]])
    soft = ope.softmax(scores, temperature=0.5)
    np.testing.assert_allclose(soft.sum(axis=1), 1)
    assert (np.argsort(soft, axis=1) == np.argsort(scores, axis=1, kind="stable")).all()
    assert ope.uniform(3, 4).tolist() == [[0.25] * 4] * 3
    e = ope.estimate([1.0, 0.0], [1, 0], [0.5, 0.5], greedy, estimators=["ips"])[0]
    assert e.to_dict()["value"] == 1.0 and e.to_dict()["estimator"] == "ips"


def test_the_module_imports_without_scikit_learn():
    code = ("import sys, failwell.loops.ope; "
            "print(sorted(m for m in ('sklearn', 'scipy', 'pandas') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True)
    assert done.stdout.strip() == "[]"


# -- bad input --------------------------------------------------------------------------------

def good() -> dict:
    return {"reward": np.array([1.0, 0.0, 1.0]), "action": np.array([0, 1, 1]),
            "propensity": np.array([0.5, 0.5, 0.25]),
            "action_dist": np.array([[0.5, 0.5], [0.2, 0.8], [1.0, 0.0]]),
            "estimated_rewards": np.full((3, 2), 0.5)}


def changed(**kw) -> dict:
    return {**good(), **kw}


@pytest.mark.parametrize(("inputs", "extra", "message"), [
    (changed(propensity=None), {}, "need the logging policy's propensities"),
    (changed(propensity=np.array([0.5, 0.0, -1.0])), {},
     r"out of range in 2 rows \(first: row 1, value 0\)"),
    (changed(propensity=np.array([0.5, 0.5, 1.5])), {},
     r"in \(0, 1\]; out of range in 1 row \(first: row 2"),
    (changed(propensity=np.array([np.nan, 0.5, 0.5])), {}, r"first: row 0, value nan"),
    (changed(reward=np.array([1.0, np.nan, 0.0])), {},
     r"NaN or infinite in 1 row \(first: row 1\)"),
    (changed(action=np.array([0, 2, 1])), {},
     r"in \[0, 2\) to index action_dist; out of range in 1 row \(first: row 1, value 2\)"),
    (changed(action=np.array([0, -1, 1])), {},
     r"out of range in 1 row \(first: row 1, value -1\)"),
    (changed(action=np.array([0.0, 1.5, 1.0])), {}, "integer codes"),
    (changed(action_dist=np.array([[0.5, 0.5], [0.2, 0.7], [1.0, 0.0]])), {},
     r"sum to 1 \(tolerance 1e-06\); not so in 1 row \(first: row 1, value 0.9"),
    (changed(action_dist=np.array([[1.5, -0.5], [0.2, 0.8], [1.0, 0.0]])), {}, "negative"),
    (changed(reward=np.array([1.0, 0.0])), {}, "action has 3 rows but reward has 2"),
    (changed(action=np.array([0, 1])), {}, "action has 2 rows but reward has 3"),
    (changed(action_dist=np.full((4, 2), 0.5)), {}, "action_dist has 4 rows"),
    (changed(estimated_rewards=np.full((3, 3), 0.5)), {}, "has 3 actions"),
    (changed(reward=np.array([]), action=np.array([], int), propensity=np.array([]),
             action_dist=np.zeros((0, 2)), estimated_rewards=np.zeros((0, 2))), {}, "empty"),
    (changed(estimated_rewards=None), {}, "DR needs estimated_rewards"),
    (changed(action_dist=np.full((3, 2, 2), 0.5)), {}, "pass position="),
    (changed(action_dist=np.full((3, 2, 2), 0.5)), {"position": np.array([0, 2, 1])},
     "below action_dist's 2 positions"),
    (changed(action_dist=np.array([[0.0, 1.0], [1.0, 0.0], [1.0, 0.0]])),
     {"estimators": ["snips"]}, "probability 0 to every logged action"),
    (good(), {"method": "bootstrap", "n_bootstrap": 100_001}, "at most|between 1 and 100,000"),
    (good(), {"method": "jackknife"}, "'normal' or 'bootstrap'"),
    (changed(reward=np.zeros(30_000), action=np.zeros(30_000, int),
             propensity=np.full(30_000, 0.5), action_dist=np.full((30_000, 2), 0.5)),
     {"method": "bootstrap", "n_bootstrap": 100_000, "estimators": ["ips"]},
     "over 2,000,000,000 draws"),
    (good(), {"confidence": 95}, "between 0 and 1"),
    (good(), {"estimators": ["snip"]}, "did you mean 'snips'"),
])
def test_bad_input_is_refused_with_one_clear_message(inputs, extra, message):
    with pytest.raises(InputError, match=message):
        ope.estimate(**inputs, **extra)


@pytest.mark.parametrize(("call", "message"), [
    (lambda: ope.fit_reward_model(np.ones((3, 2)), [0, 1, 2], [1, 0, 1], 2), r"\[0, 2\)"),
    (lambda: ope.fit_reward_model(np.ones((3, 2)), [0, 1, 1], [1, np.nan, 1], 2), "NaN"),
    (lambda: ope.fit_reward_model(np.ones((2, 2)), [0, 1, 1], [1, 0, 1], 2), "context must"),
    (lambda: ope.fit_reward_model(np.ones((3, 2)), [0, 1, 1], [1, 0, 1], 2, folds=4), "folds"),
    (lambda: ope.from_scores(np.ones((2, 3)), k=4), "k must be between 1 and 3"),
    (lambda: ope.from_scores(np.ones(3)), "np.broadcast_to"),
    (lambda: ope.from_scores(np.ones((2, 3)), epsilon=1.5), "epsilon"),
    (lambda: ope.softmax(np.ones((2, 3)), temperature=0), "temperature"),
    (lambda: ope.uniform(0, 3), "n >= 1"),
])
def test_bad_input_to_the_helpers_is_refused(call, message):
    with pytest.raises(InputError, match=message):
        call()
