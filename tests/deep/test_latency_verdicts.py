"""Latency verdicts that do not flip with the machine's load: a tail caused by a busy
machine is "inconclusive", a tail the model causes itself is a finding, and a model whose
median is over budget is flagged however busy the machine is."""

import itertools
import time

import numpy as np
import pytest

from failwell.deep import latency
from failwell.deep.latency import latency_budget, quantile_interval

X = np.zeros((64, 8))


def spiky(every: int, spike_s: float, base=lambda: None):
    """A callable that stalls on every ``every``-th call, as a preempted process would."""
    calls = itertools.count()

    def call(*_):
        if next(calls) % every == 0:
            time.sleep(spike_s)
        return base()
    return call


def test_a_busy_machine_makes_the_tail_inconclusive(monkeypatch):
    quiet_work = latency.reference_work
    stall = spiky(5, 0.012)
    monkeypatch.setattr(latency, "reference_work", lambda size: (stall(), quiet_work(size)))
    result = latency_budget(spiky(5, 0.012), X, budget_ms=5.0, repeats=40, max_seconds=1.0)
    assert result.findings == []
    assert result.config["verdict"] == "inconclusive"
    assert "too noisy" in result.config["note"]
    assert result.diagnostics["latency"]["batches"][0]["noise_ratio"] > latency.NOISE_RATIO


def test_a_tail_the_model_causes_on_a_quiet_machine_is_a_finding():
    result = latency_budget(spiky(5, 0.012), X, budget_ms=5.0, repeats=40, max_seconds=1.0)
    row = result.diagnostics["latency"]["batches"][0]
    if row["noise_ratio"] > latency.NOISE_RATIO:
        pytest.skip("this machine is too busy right now to show a quiet baseline")
    (finding,) = result.findings
    assert finding.failure_mode == "latency-budget" and result.config["verdict"] == "over budget"
    assert "95 % interval" in finding.summary


def test_a_median_over_budget_is_flagged_even_on_a_busy_machine(monkeypatch):
    quiet_work = latency.reference_work
    stall = spiky(3, 0.02)
    monkeypatch.setattr(latency, "reference_work", lambda size: (stall(), quiet_work(size)))
    result = latency_budget(lambda b: time.sleep(0.008), X, budget_ms=3.0, repeats=30)
    assert result.config["verdict"] == "over budget" and result.findings


def test_a_fast_model_is_within_budget_under_any_load(monkeypatch):
    stall = spiky(3, 0.02)
    monkeypatch.setattr(latency, "reference_work", lambda size: stall())
    result = latency_budget(lambda b: b.sum(), X, budget_ms=5.0, repeats=30)
    assert result.findings == [] and result.config["verdict"] == "within budget"


def test_the_p95_interval_covers_the_truth():
    rng = np.random.default_rng(0)
    truth = float(np.quantile(rng.exponential(size=1_000_000), 0.95))
    covered = sum(lo <= truth <= hi for lo, hi in
                  (quantile_interval(rng.exponential(size=200)) for _ in range(400)))
    assert 0.9 <= covered / 400 <= 0.99
