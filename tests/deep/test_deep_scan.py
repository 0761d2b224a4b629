"""The deep scan end to end: ``failwell demo --digits`` trains and exports two CNNs, then
``failwell deep scan`` runs on those files; planted failures are found, controls stay
clean, and every bad input gets one message and exit 2."""

import json
import subprocess
import sys

import numpy as np
import pytest
from typer.testing import CliRunner

torch = pytest.importorskip("torch")
pytest.importorskip("captum")

from failwell.cli import app  # noqa: E402
from failwell.deep.deepscan import DeepScanConfig, deep_scan  # noqa: E402
from failwell.deep.digits import digits_with_marker, split, train  # noqa: E402
from failwell.deep.shift import randomize  # noqa: E402

runner = CliRunner()


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


def _error(res) -> str:
    assert res.exit_code == 2, res.output
    assert "Traceback" not in res.output
    assert res.output.count("Error:") == 1, res.output
    return " ".join(res.output.split())


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo")
    res = invoke("demo", "--digits", "--output-dir", out)
    assert res.exit_code == 0, res.output
    return out, res.output


def test_demo_flags_the_marker_model_and_not_the_clean_one(demo):
    out, text = demo
    assert "marker model" in text and "clean model" in text
    for name in ("marker", "clean"):
        html = (out / f"digits-{name}.html").read_text()
        assert "Accuracy under corruption" in html and "Robust accuracy against eps" in html
        assert html.count("<svg") >= 2  # the robustness curve and the mCE plot
    assert "relies on a marker" in (out / "digits-marker.html").read_text()
    assert "relies on a marker" not in (out / "digits-clean.html").read_text()


def test_cli_scan_of_the_exported_model(demo, tmp_path):
    out, _ = demo
    report = tmp_path / "r.json"
    res = invoke("deep", "scan", out / "digits-marker.pt2", out / "digits-test.npz",
                 "--layer", "3", "--latency-budget-ms", "1000", "--output", report)
    assert res.exit_code == 1, res.output  # high findings, --fail-on high
    result = json.loads(report.read_text())
    by_check = {f["detector"]: f for f in result["findings"]}
    assert by_check["clever-hans"]["evidence"]["window"][:2] <= [2, 2]  # at the marker
    assert "gradcam_outside_share" in " ".join(result["metrics"])
    assert "latency" not in by_check  # 1 s is a generous budget
    lat = result["diagnostics"]["latency"]
    assert lat["cold_start"]["status"] == "ran" and lat["cold_start"]["load_ms"] > 0
    assert [b["batch_size"] for b in lat["batches"]] == [1, 32]
    assert {d["status"] for d in result["detectors"]} == {"ran"}


def test_cli_latency_budget_and_check_selection(demo):
    out, _ = demo
    res = invoke("deep", "scan", out / "digits-clean.pt2", out / "digits-test.npz",
                 "--check", "latency", "--latency-budget-ms", "0.001", "--no-cold-start",
                 "--format", "json", "--fail-on", "critical")
    assert res.exit_code == 0, res.output
    result = json.loads(res.stdout)
    assert [f["failure_mode"] for f in result["findings"]] == ["latency-budget"]
    assert [d["detector"] for d in result["detectors"]] == ["latency"]


@pytest.fixture(scope="module")
def digits():
    return split(*digits_with_marker(marker=False))


def test_domain_randomization_control_and_drift(digits):
    train_x, train_y, x, y = digits
    plain = train(train_x, train_y, epochs=15)
    randomized = train(train_x, train_y, epochs=15,
                       augment=lambda batch, rng: randomize(batch, rng=rng))
    order = np.random.default_rng(0).permutation(len(x))
    same = x[order[:200]]  # a random half of the same test set: no drift
    config = DeepScanConfig(cold_start=False, quantize=False)
    checks = ["corruptions", "drift"]
    before = deep_scan(plain, x[order[200:]], y[order[200:]], production=same,
                       checks=checks, config=config)
    after = deep_scan(randomized, x[order[200:]], y[order[200:]],
                      production=np.clip(same * 0.4 + 0.3, 0, 1), checks=checks,
                      config=config)
    assert [f.detector for f in before.findings] == ["corruptions"]  # no drift: same data
    assert [f.detector for f in after.findings] == ["domain-shift"]  # contrast-shifted data
    assert after.metrics["corruptions.mce"] < before.metrics["corruptions.mce"] - 0.05


def test_tabular_tensors_and_quantization():
    from sklearn.datasets import make_classification

    x, y = make_classification(1200, 12, n_informative=6, random_state=0)
    x = x.astype(np.float32)
    torch.manual_seed(0)
    mlp = torch.nn.Sequential(torch.nn.Linear(12, 64), torch.nn.ReLU(),
                              torch.nn.Linear(64, 2))
    opt = torch.optim.Adam(mlp.parameters(), lr=1e-2)
    xt, yt = torch.as_tensor(x[:800]), torch.as_tensor(y[:800])
    for _ in range(200):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(mlp(xt), yt).backward()
        opt.step()
    result = deep_scan(mlp, x[800:], y[800:], config=DeepScanConfig(eps=0.05,
                                                                    cold_start=False))
    status = {o.detector: o.status for o in result.outcomes}
    assert status == {"clever-hans": "skipped", "adversarial": "ran", "corruptions": "ran",
                      "latency": "ran"}
    assert set(result.diagnostics["corruptions"]["accuracy"]) == {
        "feature-noise", "feature-scaling", "feature-drift"}
    assert not [f for f in result.findings if f.detector == "adversarial"]  # eps 0.05: mild
    q = result.diagnostics["latency"]["quantized"]
    assert q["status"] == "ran" and abs(q["accuracy_change"]) < 0.03 and q["speedup"] > 0


def test_token_ids_run_only_drift_and_latency():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Embedding(50, 8), torch.nn.Flatten(),
                                torch.nn.Linear(8 * 6, 3))
    rng = np.random.default_rng(0)
    tokens, labels = rng.integers(0, 50, (300, 6)), rng.integers(0, 3, 300)
    from failwell.deep.adapter import TorchClassifier

    clf = TorchClassifier(model, integer_inputs=True)
    result = deep_scan(clf, tokens, labels, production=rng.integers(0, 50, (300, 6)),
                       config=DeepScanConfig(cold_start=False))
    status = {o.detector: o.status for o in result.outcomes}
    assert status["adversarial"] == status["corruptions"] == "skipped"
    assert status["drift"] == status["latency"] == "ran"
    assert not [f for f in result.findings if f.failure_mode == "domain-shift"]


# -- bad input: one message, exit 2 ------------------------------------------------------

@pytest.fixture(scope="module")
def files(demo, tmp_path_factory):
    out, _ = demo
    folder = tmp_path_factory.mktemp("bad")
    x = np.load(out / "digits-test.npz")["x"]
    np.savez(folder / "labels-12.npz", x=x, y=np.arange(len(x)) % 13)
    np.savez(folder / "flat.npz", x=x.reshape(len(x), -1), y=np.zeros(len(x), int))
    np.savez(folder / "uint8.npz", x=(x * 255).astype(np.uint8), y=np.zeros(len(x), int))
    np.savez(folder / "strings.npz", x=np.array([["a"]] * 3), y=np.zeros(3, int))
    np.savez(folder / "nolabels.npz", x=x)
    np.save(folder / "mask.npy", np.ones((20, 20), bool))
    torch.save(torch.nn.Linear(2, 2).state_dict(), folder / "weights.pt")
    torch.save(torch.nn.Linear(2, 2), folder / "module.pt")
    return out / "digits-clean.pt2", out / "digits-test.npz", folder


def test_output_that_does_not_match_the_labels(files):
    model, _, bad = files
    out = _error(invoke("deep", "scan", model, bad / "labels-12.npz"))
    assert "10 score(s) per input but the labels go up to 12" in out


def test_inputs_of_the_wrong_shape_or_dtype(files):
    model, _, bad = files
    assert "cannot take inputs shaped (576,)" in _error(
        invoke("deep", "scan", model, bad / "flat.npz"))
    assert "uint8" in _error(invoke("deep", "scan", model, bad / "uint8.npz"))
    assert "must be numbers" in _error(invoke("deep", "scan", model, bad / "strings.npz"))
    assert "has no labels" in _error(invoke("deep", "scan", model, bad / "nolabels.npz"))


def test_mask_of_the_wrong_size(files):
    model, data, bad = files
    out = _error(invoke("deep", "scan", model, data, "--roi", bad / "mask.npy"))
    assert "mask is (20, 20), the images are (24, 24)" in out


def test_model_files_that_cannot_be_used(files):
    _, data, bad = files
    assert "--trust-model" in _error(invoke("deep", "scan", bad / "module.pt", data))
    assert "state_dict" in _error(invoke("deep", "scan", bad / "weights.pt", data,
                                         "--trust-model"))
    assert "No model file" in _error(invoke("deep", "scan", bad / "none.pt2", data))
    assert "no layer 'conv9'" in _error(invoke("deep", "scan", files[0], data,
                                                "--layer", "conv9", "--check",
                                                "clever-hans"))
    assert "random-search" in _error(invoke("deep", "scan", files[0], data, "--attack",
                                            "pgd", "--check", "adversarial"))


def test_missing_torch_extra_names_the_pip_install(files):
    model, data, _ = files
    code = ("import sys; sys.modules['torch'] = None; sys.argv = ['failwell', 'deep', "
            f"'scan', {str(model)!r}, {str(data)!r}]; from failwell.cli import main; main()")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 2, done.stderr
    assert "pip install 'failwell[torch]'" in done.stderr and "Traceback" not in done.stderr


def test_deep_scan_is_recorded_and_surfaces_the_pneumonia_lessons(demo, tmp_path):
    out, _ = demo
    db = tmp_path / "kb.sqlite"  # a new knowledge base holds the starter library
    res = invoke("deep", "scan", out / "digits-marker.pt2", out / "digits-test.npz",
                 "--check", "clever-hans", "--kb", "--db", db, "--format", "json")
    assert res.exit_code == 1, res.output
    assert "Recorded as scan" in res.output
    assert "Lessons from Pneumonia model" in " ".join(res.output.split())
    import sqlite3

    with sqlite3.connect(db) as conn:
        stored = conn.execute("SELECT failure_mode FROM scan_findings").fetchall()
    assert stored == [("spurious-correlation",)]


def test_an_onnx_file_gets_the_black_box_checks_and_onnxruntime_quantization(demo, tmp_path):
    import warnings

    out, _ = demo
    data = np.load(out / "digits-test.npz")
    model = train(data["x"], data["y"], epochs=5)
    path = tmp_path / "cnn.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the exporter's own deprecation notices
        torch.onnx.export(model, torch.as_tensor(data["x"][:1]), str(path),
                          input_names=["x"], dynamic_axes={"x": {0: "n"}}, dynamo=False)
    res = invoke("deep", "scan", path, out / "digits-test.npz", "--eps", "0.3",
                 "--format", "json", "--fail-on", "critical")
    assert res.exit_code == 0, res.output
    result = json.loads(res.stdout)
    status = {d["detector"]: d["status"] for d in result["detectors"]}
    assert status == {"clever-hans": "skipped", "adversarial": "ran", "corruptions": "ran",
                      "latency": "ran"}
    assert result["diagnostics"]["robustness_curve"][0]["attack"] == "random-search"
    lat = result["diagnostics"]["latency"]
    assert lat["quantized"]["status"] == "ran" and abs(lat["quantized"]["accuracy_change"]) < 0.05
    assert lat["cold_start"]["status"] == "ran"


def test_an_inconclusive_latency_is_reported_as_such(demo, monkeypatch):
    from failwell.deep import latency

    monkeypatch.setattr(latency, "_verdict", lambda row, times, budget: (
        "inconclusive", "the machine is too noisy to time the tail"))
    args = ["deep", "scan", demo[0] / "digits-clean.pt2", demo[0] / "digits-test.npz",
            "--check", "latency", "--latency-budget-ms", "5", "--no-cold-start"]
    res = invoke(*args, "--format", "json")
    assert res.exit_code == 0, res.output
    result = json.loads(res.stdout)
    assert result["findings"] == []
    assert [(d["detector"], d["status"]) for d in result["detectors"]] == [
        ("latency", "inconclusive")]
    assert result["metrics"]["latency.p95_latency_ms"] > 0  # the figures are kept
    assert "inconclusive" in invoke(*args).output
