"""Use the monitor from the Hugging Face Trainer: ``Trainer(..., callbacks=[
huggingface_callback(model)])``. Built only when ``transformers`` is installed."""

from __future__ import annotations

from typing import Any

from failwell.errors import require
from failwell.training.monitor import TrainingMonitor


def huggingface_callback(model, **monitor_options: Any):
    """A ``transformers.TrainerCallback`` that checks gradients before the optimizer step
    and the loss the Trainer logs. ``callback.monitor`` holds the alerts."""
    transformers = require("transformers", extra="torch", purpose="The Trainer callback")

    class FailwellCallback(transformers.TrainerCallback):
        def __init__(self):
            self.monitor = TrainingMonitor(model, **monitor_options)
            self._loss: float | None = None

        def on_log(self, args, state, control, logs=None, **kwargs):
            if logs and "loss" in logs:
                self._loss = float(logs["loss"])

        def on_pre_optimizer_step(self, args, state, control, **kwargs):
            self.monitor.step(self._loss)  # the loss only when the Trainer logged a new one
            self._loss = None

        def on_train_end(self, args, state, control, **kwargs):
            self.monitor.close()

    return FailwellCallback()
