import joblib
import numpy as np
import pytest
import skops.io as sio
from sklearn.linear_model import LogisticRegression

from conftest import fit_logistic, people
from failwell.errors import InputError, ModelError, UntrustedModelError
from failwell.scanner import CallableModel, load_model, make_dataset, scan
from failwell.scanner.models import SklearnModel


@pytest.fixture(scope="module")
def trained():
    frame = people(2000, seed=0)
    return fit_logistic(frame, ["skill", "experience", "gender"]), frame


def test_skops_round_trip_predicts_like_the_estimator(trained, tmp_path):
    model, frame = trained
    path = tmp_path / "m.skops"
    sio.dump(model, path)
    adapter = load_model(path, trust=True)
    expected = model.predict_proba(frame[["skill", "experience", "gender"]])[:, 1]
    assert np.allclose(adapter.predict(frame[adapter.input_columns]), expected)


def test_pickle_refused_unless_trusted(trained, tmp_path):
    model, frame = trained
    path = tmp_path / "m.joblib"
    joblib.dump(model, path)
    with pytest.raises(UntrustedModelError, match="--trust-model"):
        load_model(path)
    assert load_model(path, trust=True).predict(frame[["skill", "experience", "gender"]]).shape \
        == (2000,)


def test_onnx_model_matches_sklearn(tmp_path):
    from skl2onnx import to_onnx

    frame = people(2000, seed=1)
    X = frame[["skill", "experience"]].astype(np.float32)
    model = LogisticRegression().fit(X.to_numpy(), frame["hired"])
    path = tmp_path / "m.onnx"
    path.write_bytes(to_onnx(model, X.to_numpy()[:1], options={"zipmap": False})
                     .SerializeToString())
    adapter = load_model(path)
    assert np.allclose(adapter.predict(X), model.predict_proba(X.to_numpy())[:, 1], atol=1e-5)
    ds = make_dataset(frame, target="hired", features=["skill", "experience"])
    result = scan(ds, adapter, detectors=["robustness"])
    assert result.outcomes[0].status == "ran"


def test_unknown_format_and_missing_file(tmp_path):
    with pytest.raises(InputError, match="No model file"):
        load_model(tmp_path / "nope.skops")
    bad = tmp_path / "m.h5"
    bad.write_text("x")
    with pytest.raises(InputError, match="unknown model format"):
        load_model(bad)


def test_callable_from_module_spec():
    adapter = load_model("numpy:asarray")
    assert isinstance(adapter, CallableModel)


def test_wrong_output_shape_is_a_model_error(trained):
    _, frame = trained
    adapter = CallableModel(lambda df: np.zeros((len(df), 3)))
    with pytest.raises(ModelError, match="expected one score"):
        adapter.predict(frame)


def test_predictions_are_computed_once_per_variant(trained):
    model, frame = trained
    calls = []

    def counting(df):
        calls.append(len(df))
        return model.predict_proba(df[["skill", "experience", "gender"]])[:, 1]

    ds = make_dataset(frame, target="hired", protected=["gender"],
                      features=["skill", "experience", "gender"])
    result = scan(ds, CallableModel(counting))
    # base (shared by five detectors) + one stacked call per re-predicting detector: the 2
    # gender swaps, the 3 permutations, the 1 noise variant; each on the same 2,000 rows
    assert calls == [len(frame), 2 * len(frame), 3 * len(frame), len(frame)]
    assert result.timings["model_calls"] == 4
    assert result.timings["rows_predicted"] == 7 * len(frame)
    assert isinstance(SklearnModel(model).input_columns, list)
