"""The monitor's findings in MLflow, where a team already looks at its runs.

``MlflowReporter.alert`` goes to ``TrainingMonitor(on_alert=...)``: each alert becomes an
MLflow metric (``failwell/alerts``, the count at that step) and tags as it happens, so it
shows while the run is still going. ``MlflowReporter.log_run`` copies the monitor's run record
(every metric it computed, by step) into the MLflow run, with the alerts as
``failwell/alerts.json`` and the record itself as ``failwell/run.sqlite`` (for
``failwell.training.report``). Both write through ``MlflowClient`` to an explicit run id, so
they work from callbacks after a framework has ended its run.
"""

from __future__ import annotations

import json
import math
import re
import time
from pathlib import Path
from typing import Any

from failwell.errors import InputError, require
from failwell.training.monitor import Alert, TrainingMonitor
from failwell.training.store import read_run

_BATCH = 1000  # MLflow's limit on metrics per log_batch call
_TAG_CHARS = 5000  # well under MLflow's tag value limit


def _key(name: str) -> str:
    """MLflow keys allow letters, digits, ``_-. :/``; anything else becomes ``_``."""
    return re.sub(r"[^\w\-. :/]", "_", name)


def _plain(alert: dict[str, Any]) -> dict[str, Any]:
    """Strict JSON: a non-finite value (inf; NaN comes back from SQLite as None) as text."""
    value = alert["value"]
    if value is None:
        value = "nan"
    elif not math.isfinite(value):
        value = str(value)
    return {**alert, "value": value}


class MlflowReporter:
    """Log a :class:`TrainingMonitor`'s alerts and metrics to one MLflow run: ``run_id``, or
    the active run when none is given."""

    def __init__(self, run_id: str | None = None, *, client: Any = None,
                 prefix: str = "failwell"):
        mlflow = require("mlflow", extra="mlflow", purpose="Logging the training monitor to "
                         "MLflow")
        if run_id is None:
            active = mlflow.active_run()
            if active is None:
                raise InputError("No MLflow run to log to: call mlflow.start_run() first, or "
                                 "pass run_id=.")
            run_id = active.info.run_id
        self.run_id = run_id
        self.client = client if client is not None else mlflow.MlflowClient()
        self.prefix = prefix
        self.alerts: list[Alert] = []
        self.logged_to_step = 0  # log_run sends only the steps after this one

    def alert(self, alert: Alert) -> None:
        """Log one alert now (use as ``TrainingMonitor(..., on_alert=reporter.alert)``)."""
        self.alerts.append(alert)
        self.client.log_metric(self.run_id, f"{self.prefix}/alerts", float(len(self.alerts)),
                               step=alert.step)
        self.client.set_tag(self.run_id, f"{self.prefix}.alerts", str(len(self.alerts)))
        if len(self.alerts) == 1:
            self.client.set_tag(self.run_id, f"{self.prefix}.first_alert",
                                f"step {alert.step} {alert.kind} in {alert.series}: "
                                f"{alert.detail}"[:_TAG_CHARS])

    def log_run(self, record: str | Path | TrainingMonitor, *, run_id: int | None = None
                ) -> int:
        """Copy the run record's metrics after ``logged_to_step`` (each as
        ``failwell/<series>`` at its step), then its alerts and the record file as artifacts.
        ``record``: the monitor's ``store`` path, or a monitor that has one (its buffered
        rows are written first). Call it at the end of the run, or every so many steps.
        Returns the last step logged."""
        from mlflow.entities import Metric

        if isinstance(record, TrainingMonitor):
            store = record.store
            if store is None:
                raise InputError("The monitor keeps no run record: give it store=PATH.")
            if not store.closed:
                store.flush()
            path, run_id = store.path, store.run_id
        else:
            path = Path(record)
        run = read_run(path, run_id)
        now = int(time.time() * 1000)
        metrics = [Metric(_key(f"{self.prefix}/{name}"),
                          math.nan if value is None else float(value), now, step)
                   for name, points in run["series"].items() for step, value in points
                   if step > self.logged_to_step]
        for i in range(0, len(metrics), _BATCH):
            self.client.log_batch(self.run_id, metrics=metrics[i:i + _BATCH])
        last = max((m.step for m in metrics), default=self.logged_to_step)
        self.logged_to_step = last
        alerts = run["alerts"]
        self.client.set_tag(self.run_id, f"{self.prefix}.alerts", str(len(alerts)))
        if alerts:
            first = alerts[0]
            self.client.set_tag(self.run_id, f"{self.prefix}.first_alert",
                                f"step {first['step']} {first['kind']} in {first['series']}: "
                                f"{first['detail']}"[:_TAG_CHARS])
        self.client.log_text(self.run_id, json.dumps([_plain(a) for a in alerts], indent=2),
                             f"{self.prefix}/alerts.json")
        self.client.log_artifact(self.run_id, str(path), self.prefix)
        return last
