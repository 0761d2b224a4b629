"""Proxies from a decision column alone: named, and followed or not."""

import numpy as np
import pandas as pd

from failwell.scanner import make_dataset, scan


def _tenants(seed: int, *, rule: str, n: int = 6000) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    race = rng.choice(["black", "white"], n)
    zip_code = np.where(rng.random(n) < 0.85, np.where(race == "black", "60621", "60614"),
                        np.where(race == "black", "60614", "60621"))
    income = rng.normal(50, 15, n) - 8 * (race == "black")  # a legitimate, group-linked feature
    pet = rng.choice(["yes", "no"], n)
    logit = 0.08 * (income - 45)
    if rule == "zip":
        logit = logit - 1.5 * (zip_code == "60621")
    frame = pd.DataFrame({"race": race, "zip": zip_code, "income": income, "pet": pet})
    frame["approved"] = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    frame["paid_rent"] = (rng.random(n) < 0.8).astype(int)
    return frame


def _proxy(frame):
    ds = make_dataset(frame, target="paid_rent", prediction="approved",
                      prediction_positive=(1,), protected=["race"])
    result = scan(ds, detectors=["proxy-features"])
    return [f for f in result.findings if f.failure_mode == "proxy-feature"]


def test_decisions_that_follow_a_zip_proxy_are_reported_without_a_model():
    (f,) = _proxy(_tenants(0, rule="zip"))
    assert set(f.evidence["proxies"]) == {"zip"}
    assert f.evidence["followed"] == ["zip"] and f.severity == "high"
    assert "decisions follow zip" in f.title


def test_a_proxy_the_decisions_ignore_is_named_but_not_followed():
    """Decisions follow income, which differs by race, so raw decision-zip association is
    non-zero; at equal race and income the zip code changes nothing."""
    frame = _tenants(1, rule="income")
    raw = pd.crosstab(frame["zip"], frame["approved"], normalize="index")[1]
    assert abs(raw["60621"] - raw["60614"]) > 0.05  # a careless check would be fooled
    (f,) = _proxy(frame)
    assert set(f.evidence["proxies"]) == {"zip"}
    assert f.evidence["followed"] == [] and not f.evidence["followed_jointly"]
    assert f.severity == "low"


def test_no_proxy_in_independent_columns():
    frame = _tenants(2, rule="income").drop(columns=["zip"])
    assert _proxy(frame) == []
