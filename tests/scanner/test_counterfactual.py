import numpy as np
import pandas as pd
import pytest
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline

from conftest import fit_logistic, people
from failwell.scanner import CallableModel, make_dataset, scan
from failwell.scanner.detectors.textswap import swap_gender_terms
from failwell.stats import cramers_v


def _cf(frame, model, features, **kw):
    ds = make_dataset(frame, target="hired", protected=["gender", "group"], features=features,
                      **kw)
    return scan(ds, model, detectors=["proxy-features", "counterfactual"])


def test_model_using_gender_is_flagged():
    model = fit_logistic(people(5000, seed=1, label_bias=2.0),
                         ["skill", "experience", "gender", "group"])
    result = _cf(people(3000, seed=2), model, ["skill", "experience", "gender", "group"])
    cf = [f for f in result.findings if f.failure_mode == "counterfactual-unfairness"]
    assert [f.evidence["attribute"] for f in cf] == ["gender"]
    assert cf[0].metric("flip_rate").value > 0.15
    assert result.metrics["counterfactual.group.flip_rate"] < 0.05


def test_flip_rate_matches_direct_recount():
    frame = people(2000, seed=5)
    model = fit_logistic(people(4000, seed=6, label_bias=2.0), ["skill", "gender"])
    result = _cf(frame, model, ["skill", "gender"])
    base = model.predict(frame[["skill", "gender"]])
    swapped = frame.assign(gender=frame["gender"].map({"F": "M", "M": "F"}))
    expected = np.mean(model.predict(swapped[["skill", "gender"]]) != base)
    assert result.metrics["counterfactual.gender.flip_rate"] == pytest.approx(expected)


@pytest.mark.parametrize("seed", [0, 1])
def test_model_without_protected_attributes_is_clean(seed):
    model = fit_logistic(people(4000, seed=seed), ["skill", "experience"])
    assert _cf(people(3000, seed=seed + 50), model, ["skill", "experience"]).findings == []


def test_proxy_is_found_and_counterfactual_runs_through_it():
    train = people(5000, seed=3, zip_proxy=True)
    train["hired"] = ((train["skill"] > 0) & (train["group"] == "a")).astype(int)
    model = fit_logistic(train, ["skill", "zip"])  # group-blind, but zip encodes group
    test = people(3000, seed=4, zip_proxy=True)
    result = _cf(test, model, ["skill", "experience", "zip"])
    modes = {f.failure_mode: f for f in result.findings}
    assert modes["proxy-feature"].evidence["proxies"].keys() == {"zip"}
    assert modes["proxy-feature"].evidence["followed"] == ["zip"]
    through = modes["counterfactual-unfairness"]
    assert through.evidence["attribute"] == "group"
    assert through.evidence["through_proxies"] == ["zip"]
    assert not through.evidence["attribute_is_input"]


def test_no_proxy_in_independent_features():
    test = people(3000, seed=8)
    model = fit_logistic(people(3000, seed=9), ["skill", "experience"])
    result = _cf(test, model, ["skill", "experience"])
    assert not [f for f in result.findings if f.failure_mode == "proxy-feature"]


def test_cramers_v_bounds():
    rng = np.random.default_rng(0)
    a = rng.integers(0, 3, 5000)
    assert cramers_v(a, a) == pytest.approx(1.0, abs=0.01)
    assert cramers_v(a, rng.integers(0, 3, 5000)) < 0.05


def test_swap_gender_terms_keeps_case():
    assert swap_gender_terms("Captain of the Women's chess club; he led") == \
        "Captain of the Men's chess club; she led"
    assert swap_gender_terms("HIS team") == "HER team"
    assert swap_gender_terms("manager of menus") == "manager of menus"


def _resumes(n, seed, penalize_women):
    rng = np.random.default_rng(seed)
    skills = rng.choice(["python", "sql", "statistics", "java"], n)
    clubs = rng.choice(["women's chess club", "men's chess club", "debate society"], n)
    good = rng.random(n) < 0.5
    text = [f"{'senior' if g else 'junior'} engineer, {s}, member of {c}"
            for g, s, c in zip(good, skills, clubs, strict=True)]
    hired = good.copy()
    if penalize_women:  # the historical hiring decisions rejected "women's"
        hired &= ~pd.Series(clubs).str.startswith("women").to_numpy()
    return pd.DataFrame({"resume": text, "hired": hired.astype(int)})


@pytest.mark.parametrize("biased", [True, False])
def test_resume_screener_gender_terms(biased):
    train = _resumes(3000, 1, penalize_women=biased)
    pipe = make_pipeline(TfidfVectorizer(), LogisticRegression(C=10, max_iter=1000))
    pipe.fit(train["resume"], train["hired"])
    model = CallableModel(lambda df: pipe.predict_proba(df["resume"])[:, 1])
    test = _resumes(2000, 2, penalize_women=biased)
    ds = make_dataset(test, target="hired", text=["resume"], features=[])
    result = scan(ds, model, detectors=["counterfactual"])
    flagged = [f for f in result.findings if f.evidence.get("text_column") == "resume"]
    if biased:
        assert flagged and flagged[0].metric("flip_rate").value > 0.2
        assert "women's" in flagged[0].evidence["examples"][0]["original"] or \
            "men's" in flagged[0].evidence["examples"][0]["original"]
    else:
        assert flagged == []
