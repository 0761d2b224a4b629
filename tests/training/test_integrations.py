"""The monitor where training already runs: a real ``lightning.pytorch.Trainer.fit`` and a real
``transformers.Trainer.train`` on tiny models (built here, nothing downloaded), each with a
fault planted inside the framework's own loop that the callback reports at its step, and clean
fits that report nothing; and MLflow, read back from a local SQLite tracking store. Each part
skips when its package is not installed."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

torch = pytest.importorskip("torch")

from failwell.errors import MissingExtraError  # noqa: E402
from failwell.training import TrainingMonitor, faults  # noqa: E402

STEPS = 60  # batches of 64 in one epoch


def data(seed: int = 0) -> torch.utils.data.DataLoader:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(64 * STEPS, 10, generator=g)
    y = x[:, :3].argmax(1)
    return torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=64)


# -- PyTorch Lightning --------------------------------------------------------------------------


def lightning_module(overflow_at: int = 0, spike_at: int = 0):
    """A tiny classifier whose own hooks plant the fault: gradients overflowed after backward
    (as a bad loss scale leaves them), or one batch of inputs scaled 1000x (a loss spike)."""
    pl = pytest.importorskip("lightning.pytorch")

    class Tiny(pl.LightningModule):
        def __init__(self):
            super().__init__()
            self.net = torch.nn.Sequential(torch.nn.Linear(10, 32), torch.nn.ReLU(),
                                           torch.nn.Linear(32, 3))

        def training_step(self, batch, batch_idx):
            x, y = batch
            if self.global_step + 1 == spike_at:
                x = x * 1000.0
            return torch.nn.functional.cross_entropy(self.net(x), y)

        def on_after_backward(self):
            if self.global_step + 1 == overflow_at:
                faults.overflow_gradients(self)

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.05)

    return Tiny()


def fit(module, callback, *, logger=False, seed: int = 0, **trainer_options):
    pl = pytest.importorskip("lightning.pytorch")
    torch.manual_seed(seed)
    trainer = pl.Trainer(max_epochs=1, callbacks=[callback], logger=logger, accelerator="cpu",
                         devices=1, enable_checkpointing=False, enable_progress_bar=False,
                         enable_model_summary=False, **trainer_options)
    trainer.fit(module, data(seed))
    return trainer


def test_lightning_clean_fits_report_nothing():
    pytest.importorskip("lightning.pytorch")
    from failwell.training.callbacks import lightning_callback

    for seed in range(3):
        callback = lightning_callback()
        fit(lightning_module(), callback, seed=seed)
        assert callback.monitor.steps == STEPS and callback.monitor.alerts == [], seed
    # under gradient accumulation, one check per optimizer step, not per batch
    callback = lightning_callback()
    fit(lightning_module(), callback, accumulate_grad_batches=2)
    assert callback.monitor.steps == STEPS // 2 and callback.monitor.alerts == []


def test_lightning_reports_overflowed_gradients_at_their_step():
    pytest.importorskip("lightning.pytorch")
    from failwell.training.callbacks import lightning_callback

    callback = lightning_callback()  # default settings: gradient norms every 10 steps
    fit(lightning_module(overflow_at=30), callback)
    first = callback.monitor.alerts[0]
    assert (first.step, first.kind, first.series) == (30, "nonfinite", "grad_norm")


def test_lightning_reports_a_loss_spike_at_its_step():
    pytest.importorskip("lightning.pytorch")
    from failwell.training.callbacks import lightning_callback

    callback = lightning_callback()
    fit(lightning_module(spike_at=35), callback)  # not a norm step: only the loss sees it
    first = callback.monitor.alerts[0]
    assert (first.step, first.kind, first.series) == (35, "spike", "loss"), first


def test_a_missing_framework_names_its_extra(monkeypatch):
    from failwell.training.callbacks import huggingface_callback, lightning_callback
    from failwell.training.mlflow_logging import MlflowReporter

    for module in ("lightning.pytorch", "transformers", "mlflow"):
        monkeypatch.setitem(sys.modules, module, None)  # import fails as if not installed
    with pytest.raises(MissingExtraError, match=r"failwell\[lightning\]"):
        lightning_callback()
    with pytest.raises(MissingExtraError, match=r"failwell\[huggingface\]"):
        huggingface_callback(torch.nn.Linear(2, 2))
    with pytest.raises(MissingExtraError, match=r"failwell\[mlflow\]"):
        MlflowReporter("some-run")


def test_importing_the_integrations_imports_no_framework():
    code = ("import sys, failwell.training.callbacks, failwell.training.mlflow_logging; "
            "print([m for m in ('lightning', 'mlflow', 'transformers') if m in sys.modules])")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


# -- MLflow -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tracking(tmp_path_factory):
    """One SQLite tracking store for the module (creating its tables takes seconds)."""
    mlflow = pytest.importorskip("mlflow")
    root = tmp_path_factory.mktemp("mlflow")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(uri)
    client = mlflow.MlflowClient(uri)
    experiment = client.create_experiment("failwell", artifact_location=(root / "art").as_uri())
    yield mlflow, client, uri, experiment, root
    mlflow.set_tracking_uri(previous)


def alerts_artifact(client, run_id: str) -> list[dict]:
    path = client.download_artifacts(run_id, "failwell/alerts.json")
    with open(path) as fh:
        return json.load(fh)


def test_mlflow_gets_alerts_as_they_happen_and_every_metric_once(tracking, tmp_path):
    from failwell.errors import InputError
    from failwell.training.mlflow_logging import MlflowReporter

    mlflow, client, _, experiment, _ = tracking
    with pytest.raises(InputError, match="No MLflow run"):
        MlflowReporter()
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(10, 32), torch.nn.ReLU(), torch.nn.Linear(32, 3))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05)
    with mlflow.start_run(experiment_id=experiment) as run:
        reporter = MlflowReporter()
        monitor = TrainingMonitor(model, optimizer, store=tmp_path / "run.sqlite",
                                  on_alert=reporter.alert)
        seen_live, losses = None, []
        for step, (x, y) in enumerate(data(), start=1):
            optimizer.zero_grad()
            loss = torch.nn.functional.cross_entropy(model(x), y)
            loss.backward()
            if step == 40:
                faults.overflow_gradients(model)
            optimizer.step()
            monitor.step(loss)
            losses.append(loss.item())
            if step == 40:  # the alerts are in MLflow before the run goes on
                seen_live = (client.get_run(run.info.run_id).data.tags.get("failwell.alerts"),
                             len(monitor.alerts))
            if step == 25:
                assert reporter.log_run(monitor) == 25  # mid-run: the steps so far
        monitor.close()
        assert reporter.log_run(tmp_path / "run.sqlite") == STEPS  # the rest
    run_id = run.info.run_id
    assert seen_live[1] > 0 and seen_live[0] == str(seen_live[1])
    loss = client.get_metric_history(run_id, "failwell/loss")
    assert [m.step for m in loss] == list(range(1, STEPS + 1))  # each step once, in order
    assert [m.value for m in loss[:40]] == pytest.approx(losses[:40])
    norms = client.get_metric_history(run_id, "failwell/grad_norm/0.weight")
    assert [m.step for m in norms] == list(range(10, STEPS + 1, 10))
    assert any(m.step == 40 and m.value > 1e300 for m in norms)  # inf, stored as max float
    tags = client.get_run(run_id).data.tags
    assert tags["failwell.alerts"] == str(len(monitor.alerts))
    assert tags["failwell.first_alert"].startswith("step 40 nonfinite in grad_norm")
    logged = alerts_artifact(client, run_id)
    assert [(a["step"], a["series"]) for a in logged] == [
        (a.step, a.series) for a in monitor.alerts]
    assert logged[0]["value"] == "inf"  # strict JSON
    counts = client.get_metric_history(run_id, "failwell/alerts")
    assert counts[0].step == 40 and counts[-1].value == len(monitor.alerts)


def test_lightning_logs_to_its_mlflow_run(tracking):
    pytest.importorskip("lightning.pytorch")
    from lightning.pytorch.loggers import MLFlowLogger

    from failwell.training.callbacks import lightning_callback

    _, client, uri, _, root = tracking
    runs = {}
    for fault in (0, 30):
        logger = MLFlowLogger(experiment_name=f"lightning-{fault}", tracking_uri=uri,
                              artifact_location=(root / f"art-{fault}").as_uri())
        callback = lightning_callback(mlflow=True)
        fit(lightning_module(overflow_at=fault), callback, logger=logger, log_every_n_steps=10)
        runs[fault] = (logger.run_id, callback.monitor)
    clean_id, clean = runs[0]
    assert clean.alerts == []
    tags = client.get_run(clean_id).data.tags
    assert tags["failwell.alerts"] == "0" and "failwell.first_alert" not in tags
    assert alerts_artifact(client, clean_id) == []
    assert client.get_metric_history(clean_id, "failwell/alerts") == []
    assert len(client.get_metric_history(clean_id, "failwell/loss")) == STEPS
    faulty_id, faulty = runs[30]
    tags = client.get_run(faulty_id).data.tags
    assert tags["failwell.first_alert"].startswith("step 30 nonfinite in grad_norm")
    assert tags["failwell.alerts"] == str(len(faulty.alerts))
    assert alerts_artifact(client, faulty_id)[0]["step"] == 30
    names = {f.path for f in client.list_artifacts(faulty_id, "failwell")}
    assert names == {"failwell/alerts.json", "failwell/run.sqlite"}
    assert not faulty.store.path.exists()  # the temporary record was removed once copied


# -- Hugging Face Trainer -----------------------------------------------------------------------


def hf_train(overflow_at: int = 0, seed: int = 0, steps: int = 40, report_to=(), **options):
    """A one-layer BERT classifier (built from a config) trained for ``steps`` steps by a
    Trainer whose own ``training_step`` overflows the gradients after backward at
    ``overflow_at``; returns the callback."""
    transformers = pytest.importorskip("transformers")
    pytest.importorskip("accelerate")  # the Trainer needs it
    from failwell.training.callbacks import huggingface_callback

    class FaultyTrainer(transformers.Trainer):
        def training_step(self, model, inputs, num_items_in_batch=None):
            loss = super().training_step(model, inputs, num_items_in_batch)
            if self.state.global_step + 1 == overflow_at:
                faults.overflow_gradients(model)
            return loss

    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(0, 64, (16 * steps, 12), generator=g)
    rows = [{"input_ids": ids[i], "labels": ids[i, 0] % 2} for i in range(len(ids))]
    torch.manual_seed(seed)
    config = transformers.BertConfig(vocab_size=64, hidden_size=32, num_hidden_layers=1,
                                     num_attention_heads=2, intermediate_size=64,
                                     max_position_embeddings=16, num_labels=2)
    model = transformers.BertForSequenceClassification(config)
    callback = huggingface_callback(model, **options)
    import tempfile

    with tempfile.TemporaryDirectory() as out:
        args = transformers.TrainingArguments(
            output_dir=out, per_device_train_batch_size=16, num_train_epochs=1,
            learning_rate=1e-3, logging_steps=1, report_to=list(report_to), save_strategy="no",
            use_cpu=True, disable_tqdm=True, seed=seed, dataloader_num_workers=0)
        FaultyTrainer(model=model, args=args, train_dataset=rows, callbacks=[callback]).train()
    return callback


def test_huggingface_clean_runs_report_nothing():
    for seed in range(2):
        callback = hf_train(seed=seed)
        assert callback.monitor.steps == 40 and callback.monitor.alerts == [], seed


def test_huggingface_reports_overflowed_gradients_at_their_step():
    callback = hf_train(overflow_at=30)
    first = callback.monitor.alerts[0]
    assert (first.step, first.kind, first.series) == (30, "nonfinite", "grad_norm")


def test_huggingface_logs_to_the_run_its_mlflow_callback_started(tracking, monkeypatch):
    """``report_to=["mlflow"]``: the Trainer's own MLflow callback starts the run (and ends it
    before ours runs at the end of training); the alerts and metrics still land in it."""
    _, client, uri, _, _ = tracking
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.setenv("MLFLOW_EXPERIMENT_NAME", "failwell")  # its artifacts under tmp
    callback = hf_train(overflow_at=30, report_to=["mlflow"], mlflow=True)
    run = client.get_run(callback.reporter.run_id)
    assert run.data.params.get("learning_rate") == "0.001"  # the Trainer's run, not another
    assert run.data.tags["failwell.first_alert"].startswith("step 30 nonfinite in grad_norm")
    assert len(client.get_metric_history(run.info.run_id, "failwell/grad_norm")) == 4
    assert alerts_artifact(client, run.info.run_id)[0]["step"] == 30
