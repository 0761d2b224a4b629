"""Reading subjects: CSV, Parquet, pandas and polars give the same dataset; roles checked."""

import polars as pl
import pytest

from conftest import people
from failwell.errors import InputError
from failwell.scanner import make_dataset, scan


@pytest.fixture(scope="module")
def frame():
    frame = people(1500, seed=3, label_bias=1.5)
    frame["decision"] = (frame["skill"] > 0).astype(int)
    return frame


@pytest.mark.parametrize("kind", ["csv", "parquet", "pandas", "polars"])
def test_every_source_gives_the_same_findings(frame, kind, tmp_path):
    if kind == "csv":
        source = tmp_path / "d.csv"
        frame.to_csv(source, index=False)
    elif kind == "parquet":
        source = tmp_path / "d.parquet"
        frame.to_parquet(source)
    elif kind == "polars":
        source = pl.from_pandas(frame)
    else:
        source = frame
    ds = make_dataset(source, target="hired", prediction="decision", protected=["gender"])
    result = scan(ds, detectors=["group-fairness", "data-audit"])
    titles = sorted(f.title for f in result.findings)
    assert "Label base rate differs across gender" in titles
    reference = scan(make_dataset(frame, target="hired", prediction="decision",
                                  protected=["gender"]),
                     detectors=["group-fairness", "data-audit"])
    assert titles == sorted(f.title for f in reference.findings)


def test_roles(frame):
    ds = make_dataset(frame, target="hired", prediction="decision", protected=["gender"],
                      metadata=["group"])
    assert "decision" not in ds.features and "hired" not in ds.features
    assert ds.roles()["metadata"] == ["group"]


@pytest.mark.parametrize("kwargs,message", [
    ({"prediction": "decision", "score": "skill"}, "either --prediction or --score"),
    ({"score": "skill"}, "--threshold"),
    ({"score": "gender"}, "must be numeric"),
    ({"positive_label": "7"}, "is not a value"),
    ({"where": "nonsense >>"}, "--where"),
    ({"where": "skill > 100"}, "No rows are left"),
    ({"protected": ["gendr"]}, "'gender'"),
])
def test_role_errors(frame, kwargs, message):
    with pytest.raises(InputError, match=message):
        make_dataset(frame, target="hired", **kwargs)


def test_string_labels_need_a_positive_label(frame):
    labelled = frame.assign(hired=frame["hired"].map({0: "no", 1: "yes"}),
                            outcome=frame["hired"].map({0: "rejected", 1: "hired"}))
    assert make_dataset(labelled, target="hired").positive_label == "yes"
    with pytest.raises(InputError, match="--positive-label"):
        make_dataset(labelled.drop(columns="hired"), target="outcome")
    ds = make_dataset(labelled.drop(columns="hired"), target="outcome", positive_label="hired")
    assert ds.y.sum() == frame["hired"].sum()


def test_prediction_values_must_be_mapped(frame):
    coded = frame.assign(decision=frame["decision"].map({0: "low", 1: "high"}))
    with pytest.raises(InputError, match="--prediction-positive"):
        make_dataset(coded, target="hired", prediction="decision")
    ds = make_dataset(coded, target="hired", prediction="decision", prediction_positive=["high"])
    assert (ds.given_predictions()[0] == frame["decision"]).all()


def test_unsupported_file_type(tmp_path):
    path = tmp_path / "d.xlsx"
    path.write_text("x")
    with pytest.raises(InputError, match="unsupported file type"):
        make_dataset(path, target="y")
    with pytest.raises(InputError, match="No such file"):
        make_dataset(tmp_path / "missing.csv", target="y")
    with pytest.raises(InputError, match="directory"):
        make_dataset(tmp_path, target="y")
