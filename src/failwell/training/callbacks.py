"""Use the monitor where training already runs, without touching the loop:

* Hugging Face: ``Trainer(..., callbacks=[huggingface_callback(model)])``;
* PyTorch Lightning: ``Trainer(callbacks=[lightning_callback()])``.

``callback.monitor`` holds the alerts. With ``mlflow=True`` the alerts also go to the MLflow
run as they happen, and the monitor's metrics at the end of training (see
:mod:`failwell.training.mlflow_logging`). Each is built only when its framework is installed.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch

from failwell.errors import require
from failwell.training.monitor import Alert, TrainingMonitor


def _chain(*handlers: Callable[[Alert], None] | None) -> Callable[[Alert], None] | None:
    live = [h for h in handlers if h is not None]
    if not live:
        return None

    def handle(alert: Alert) -> None:
        for h in live:
            h(alert)

    return handle


class _MlflowLink:
    """What ``mlflow=True`` adds to a callback: a run record to copy (a temporary one unless
    the caller gave ``store=``) and a reporter bound to the run once training starts."""

    def __init__(self, monitor_options: dict[str, Any]):
        require("mlflow", extra="mlflow", purpose="Logging the training monitor to MLflow")
        self.reporter = None
        self._tmp: Path | None = None
        if monitor_options.get("store") is None:  # removed once copied to MLflow
            self._tmp = Path(tempfile.mkdtemp(prefix="failwell-run-"))
            monitor_options["store"] = self._tmp / "run.sqlite"
        self.user_on_alert = monitor_options.pop("on_alert", None)

    def bind(self, run_id: str | None = None, client: Any = None) -> None:
        from failwell.training.mlflow_logging import MlflowReporter

        self.reporter = MlflowReporter(run_id, client=client)

    def on_alert(self, alert: Alert) -> None:
        if self.reporter is not None:
            self.reporter.alert(alert)

    def finish(self, monitor: TrainingMonitor) -> None:
        monitor.close()
        try:
            if self.reporter is not None:
                self.reporter.log_run(monitor.store.path, run_id=monitor.store.run_id)
        finally:
            if self._tmp is not None:
                shutil.rmtree(self._tmp, ignore_errors=True)


def huggingface_callback(model, *, mlflow: bool = False, **monitor_options: Any):
    """A ``transformers.TrainerCallback`` that checks gradients before the optimizer step
    (the Trainer zeroes them right after it) and the loss the Trainer logs. The Trainer logs
    after the step, so a loss is judged at the next optimizer step, averaged over
    ``logging_steps``; and it replaces a NaN or infinite loss by the running mean unless
    ``logging_nan_inf_filter=False``. ``mlflow=True`` logs to the run that
    ``report_to=["mlflow"]`` (or the caller) started."""
    transformers = require("transformers", extra="huggingface", purpose="The Trainer callback")
    link = _MlflowLink(monitor_options) if mlflow else None
    on_alert = (_chain(link.user_on_alert, link.on_alert) if link
                else monitor_options.pop("on_alert", None))

    class FailwellCallback(transformers.TrainerCallback):
        def __init__(self):
            self.monitor = TrainingMonitor(model, on_alert=on_alert, **monitor_options)
            self.reporter = None  # the MlflowReporter, once training started with mlflow=True
            self._loss: float | None = None

        def on_train_begin(self, args, state, control, **kwargs):
            if link is not None and state.is_world_process_zero:
                link.bind()  # the reporting callbacks, which start the run, ran before us
                self.reporter = link.reporter

        def on_log(self, args, state, control, logs=None, **kwargs):
            if logs and "loss" in logs:
                self._loss = float(logs["loss"])

        def on_pre_optimizer_step(self, args, state, control, **kwargs):
            self.monitor.step(self._loss)  # the loss only when the Trainer logged a new one
            self._loss = None

        def on_train_end(self, args, state, control, **kwargs):
            if link is not None:
                link.finish(self.monitor)
            else:
                self.monitor.close()

    return FailwellCallback()


def lightning_callback(*, mlflow: bool = False, **monitor_options: Any):
    """A ``lightning.pytorch.Callback``. The monitor is built at the start of training on the
    ``LightningModule`` and its first optimizer, and checks each optimizer step after it ran
    (in ``on_train_batch_end``, where the gradients are still there) with the mean loss of the
    batches accumulated into it. ``mlflow=True`` logs to the trainer's ``MLFlowLogger`` run
    if it has one, else to the active MLflow run (from global rank 0 only)."""
    pl = require("lightning.pytorch", extra="lightning", purpose="The Lightning callback")
    from lightning.pytorch.loggers import MLFlowLogger  # importable without mlflow

    link = _MlflowLink(monitor_options) if mlflow else None
    on_alert = (_chain(link.user_on_alert, link.on_alert) if link
                else monitor_options.pop("on_alert", None))

    class FailwellLightningCallback(pl.Callback):
        def __init__(self):
            self.monitor: TrainingMonitor | None = None
            self.reporter = None  # the MlflowReporter, once training started with mlflow=True
            self._losses: list[float] = []
            self._stepped = False
            self._finished = False

        def on_train_start(self, trainer, pl_module):
            optimizer = trainer.optimizers[0] if trainer.optimizers else None
            if link is not None and trainer.is_global_zero:
                logger = next((lg for lg in trainer.loggers if isinstance(lg, MLFlowLogger)),
                              None)
                if logger is not None:
                    link.bind(logger.run_id, logger.experiment)
                else:
                    link.bind()
                self.reporter = link.reporter
            self.monitor = TrainingMonitor(pl_module, optimizer, on_alert=on_alert,
                                           **monitor_options)
            self._losses, self._stepped, self._finished = [], False, False

        def on_before_optimizer_step(self, trainer, pl_module, optimizer):
            self._stepped = True  # skipped under accumulation until the last micro-batch

        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
            loss = outputs.get("loss") if isinstance(outputs, Mapping) else outputs
            if isinstance(loss, torch.Tensor):
                loss = loss.detach()
            if loss is not None:
                self._losses.append(float(loss))
            if not self._stepped or self.monitor is None:
                return
            self._stepped = False
            mean = sum(self._losses) / len(self._losses) if self._losses else None
            self._losses = []
            self.monitor.step(mean)

        def teardown(self, trainer, pl_module, stage):
            if stage != "fit" or self.monitor is None or self._finished:
                return
            self._finished = True
            if link is not None:
                link.finish(self.monitor)
            else:
                self.monitor.close()

    return FailwellLightningCallback()
