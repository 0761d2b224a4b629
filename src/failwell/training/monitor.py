"""``TrainingMonitor``: drop into any PyTorch loop and call ``monitor.step(loss)`` after
``optimizer.step()``.

What it watches, and how often at the defaults (chosen to keep the overhead under 3 % of a
step on small CPU models; see ``benchmarks/bench_training.py``):

* every step: the loss (finite; upward spikes against a median/MAD band in log space);
* every ``every`` (10) steps: per-layer gradient and weight norms in one fused call each
  (non-finite values; spikes; weight norms that jump either way);
* every ``stats_every`` (100) steps: per-layer update-to-weight ratios and extreme weights;
* every ``replay_every`` (500) steps, with a canary batch: deterministic replay. The canary loss is
  computed on the live model and again on a clean copy of the same state (another "device");
  the two must agree within ``replay_tol``, and the copy's own forward/backward run twice
  must agree bit for bit. A faulty core that silently computes wrong values disagrees.

An alert is raised once per series until that series is back inside its band.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from failwell.training.anomaly import RobustBand


@dataclass
class Alert:
    step: int
    kind: str  # nonfinite, spike, replay-mismatch, replica-mismatch
    series: str
    value: float
    detail: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Timings:
    """Seconds spent in each check, to report the monitor's own overhead."""

    loss: float = 0.0
    norms: float = 0.0
    stats: float = 0.0
    replay: float = 0.0
    record: float = 0.0
    calls: dict[str, int] = field(default_factory=dict)

    def add(self, name: str, seconds: float) -> None:
        setattr(self, name, getattr(self, name) + seconds)
        self.calls[name] = self.calls.get(name, 0) + 1


class TrainingMonitor:
    def __init__(self, model: torch.nn.Module, optimizer: torch.optim.Optimizer | None = None,
                 *, canary: tuple[torch.Tensor, torch.Tensor] | None = None,
                 loss_fn: Callable | None = None, every: int = 10, stats_every: int = 100,
                 replay_every: int = 500, window: int = 100, warmup: int = 20,
                 threshold: float = 8.0, replay_tol: float = 1e-5,
                 store: str | Path | None = None, run_name: str = "run",
                 on_alert: Callable[[Alert], None] | None = None):
        self.model, self.optimizer = model, optimizer
        self.canary, self.loss_fn = canary, loss_fn or torch.nn.functional.cross_entropy
        self.every, self.stats_every, self.replay_every = every, stats_every, replay_every
        self.threshold, self.replay_tol = threshold, replay_tol
        self.window, self.warmup = window, warmup
        self.names = [n for n, p in model.named_parameters() if p.requires_grad]
        self.params = [p for _, p in model.named_parameters() if p.requires_grad]
        self.bands: dict[str, RobustBand] = {}
        self.open: set[str] = set()  # series currently alerting
        self.alerts: list[Alert] = []
        self.on_alert = on_alert
        self.steps = 0
        self.timings = Timings()
        self._before: list[torch.Tensor] | None = None
        self._scratch: torch.nn.Module | None = None
        self.store = None
        if store is not None:
            from failwell.training.store import RunStore

            self.store = RunStore(store, run_name=run_name, config={
                "every": every, "stats_every": stats_every, "replay_every": replay_every,
                "window": window, "warmup": warmup, "threshold": threshold,
                "parameters": self.names})
        self._hook = None
        self._arm_update_snapshot()

    # -- the loop's one call ---------------------------------------------------------------

    def step(self, loss: torch.Tensor | float | None = None) -> list[Alert]:
        """Check this step (``loss`` may be None when the loop does not have it); returns
        the alerts it raised (also kept in ``self.alerts``)."""
        self.steps += 1
        step, new = self.steps, []
        recorded: dict[str, float] = {}
        t0 = time.perf_counter()
        if loss is not None:
            value = float(loss.detach()) if isinstance(loss, torch.Tensor) else float(loss)
            recorded["loss"] = value
            new += self._judge(step, "loss", value, upward_only=True)
        t1 = time.perf_counter()
        self.timings.add("loss", t1 - t0)
        if step % self.every == 0:
            new += self._norms(step, recorded)
            t2 = time.perf_counter()
            self.timings.add("norms", t2 - t1)
            t1 = t2
        if step % self.stats_every == 0:
            new += self._stats(step, recorded)
            t2 = time.perf_counter()
            self.timings.add("stats", t2 - t1)
            t1 = t2
        if self.canary is not None and step % self.replay_every == 0:
            new += self._replay(step, recorded)
            t2 = time.perf_counter()
            self.timings.add("replay", t2 - t1)
            t1 = t2
        self._arm_update_snapshot()
        if self.store is not None:
            self.store.metrics(step, recorded)
            for alert in new:
                self.store.alert(alert.step, alert.kind, alert.series, alert.value,
                                 alert.detail)
            self.timings.add("record", time.perf_counter() - t1)
        return new

    # -- checks ----------------------------------------------------------------------------

    def _judge(self, step: int, series: str, value: float, *, upward_only: bool = False,
               floor: float = 0.01, warmup: int | None = None) -> list[Alert]:
        if not math.isfinite(value):
            return self._raise(step, "nonfinite", series, value,
                               f"{series} is {value} at step {step}")
        band = self.bands.get(series)
        if band is None:
            band = self.bands[series] = RobustBand(
                window=self.window, warmup=warmup or self.warmup, floor=floor)
        score = band.update(value)
        outside = score > self.threshold or (not upward_only and score < -self.threshold)
        if not outside:
            self.open.discard(series)
            return []
        direction = "above" if score > 0 else "below"
        return self._raise(step, "spike", series, value,
                           f"{series} = {value:.4g} is {abs(score):.1f} robust deviations "
                           f"{direction} its recent median at step {step}")

    def _raise(self, step: int, kind: str, series: str, value: float, detail: str
               ) -> list[Alert]:
        if series in self.open:
            return []
        self.open.add(series)
        alert = Alert(step, kind, series, value, detail)
        self.alerts.append(alert)
        if self.on_alert:
            self.on_alert(alert)
        return [alert]

    def _norms(self, step: int, recorded: dict[str, float]) -> list[Alert]:
        grads = [p.grad for p in self.params if p.grad is not None]
        new: list[Alert] = []
        with torch.no_grad():
            weights = torch.stack(torch._foreach_norm([p.detach() for p in self.params]))
            weight_norms = weights.tolist()
            if grads:
                grad_norms = torch.stack(torch._foreach_norm(grads)).tolist()
                total = math.sqrt(sum(g * g for g in grad_norms))
                recorded["grad_norm"] = total
                new += self._judge(step, "grad_norm", total, upward_only=True)
                for name, g in zip(self.names, grad_norms, strict=False):
                    recorded[f"grad_norm/{name}"] = g
                    new += self._judge(step, f"grad_norm/{name}", g, upward_only=True)
        for name, w in zip(self.names, weight_norms, strict=True):
            recorded[f"weight_norm/{name}"] = w
            # weights drift fast early and slowly later: a longer warm-up and a 5 % floor;
            # a corruption that matters moves a layer's norm by far more
            new += self._judge(step, f"weight_norm/{name}", w, floor=0.02,
                               warmup=max(self.warmup, 50))
        return new

    def _arm_update_snapshot(self) -> None:
        """Before the optimizer step that precedes a stats step, snapshot the weights (a
        one-shot hook, so other steps pay nothing)."""
        if (self.steps + 1) % self.stats_every == 0 and self._hook is None and \
                self.optimizer is not None and hasattr(self.optimizer, "register_step_pre_hook"):
            self._hook = self.optimizer.register_step_pre_hook(self._before_step)

    def _before_step(self, optimizer, args, kwargs) -> None:
        self._before = [p.detach().clone() for p in self.params]
        self._hook.remove()
        self._hook = None

    def _stats(self, step: int, recorded: dict[str, float]) -> list[Alert]:
        new: list[Alert] = []
        with torch.no_grad():
            for i, (name, p) in enumerate(zip(self.names, self.params, strict=True)):
                extreme = float(p.detach().abs().max())
                recorded[f"max_abs/{name}"] = extreme
                new += self._judge(step, f"max_abs/{name}", extreme, upward_only=True)
                if self._before is not None:
                    norm = float(self._before[i].norm())
                    ratio = float((p.detach() - self._before[i]).norm()) / max(norm, 1e-12)
                    recorded[f"update_ratio/{name}"] = ratio
                    new += self._judge(step, f"update_ratio/{name}", ratio, upward_only=True,
                                       floor=0.05)
        self._before = None
        return new

    def _clean_copy(self) -> torch.nn.Module:
        """The live model's architecture without its hooks: the "other device"."""
        if self._scratch is None:
            self._scratch = copy.deepcopy(self.model)
            for module in self._scratch.modules():
                module._forward_hooks.clear()
                module._forward_pre_hooks.clear()
                module._backward_hooks.clear()
        self._scratch.load_state_dict(self.model.state_dict())
        return self._scratch

    def canary_loss(self, model: torch.nn.Module | None = None) -> float:
        model = model or self.model
        x, y = self.canary
        was_training = model.training
        model.eval()
        with torch.no_grad():
            value = float(self.loss_fn(model(x), y))
        model.train(was_training)
        return value

    def _replay(self, step: int, recorded: dict[str, float]) -> list[Alert]:
        live = self.canary_loss()
        scratch = self._clean_copy()
        replayed = self.canary_loss(scratch)
        recorded["canary_loss"] = live
        new = []
        if not (math.isfinite(live) and math.isfinite(replayed)):
            return self._raise(step, "nonfinite", "canary_loss", live,
                               f"canary loss is {live} at step {step}")
        if not math.isclose(live, replayed, rel_tol=self.replay_tol, abs_tol=1e-12):
            new += self._raise(step, "replay-mismatch", "canary_loss", live,
                               f"canary loss {live!r} on the training model, {replayed!r} "
                               f"replayed from the same state at step {step}: a computation "
                               "differed (faulty device or silent data corruption)")
        else:
            self.open.discard("canary_loss")
        first, second = self._canary_gradients(scratch), self._canary_gradients(scratch)
        if not torch.allclose(first, second, rtol=0.0, atol=0.0, equal_nan=True):
            new += self._raise(step, "replay-mismatch", "canary_gradients",
                               float((first - second).abs().max()),
                               f"two identical canary backward passes differed at step {step}")
        else:
            self.open.discard("canary_gradients")
        return new

    def _canary_gradients(self, model: torch.nn.Module) -> torch.Tensor:
        x, y = self.canary
        model.zero_grad(set_to_none=True)
        self.loss_fn(model(x), y).backward()
        grads = [p.grad.detach().flatten() for p in model.parameters() if p.grad is not None]
        return torch.cat(grads)

    # -- after the run -----------------------------------------------------------------------

    def overhead(self) -> dict[str, float]:
        """Seconds spent in each check so far."""
        return {k: v for k, v in asdict(self.timings).items() if k != "calls"}

    def close(self) -> None:
        """Write the buffered metrics (the store also flushes on a timer and at exit)."""
        if self.store is not None:
            self.store.close()

    def __enter__(self) -> TrainingMonitor:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def draft_postmortem(self, *, id: str, title: str | None = None, project: str = ""):
        """A blameless postmortem draft pre-filled with the alerts (for the knowledge base:
        ``KnowledgeBase.open().add(monitor.draft_postmortem(id=...))``)."""
        import datetime as dt

        from failwell.findings import Severity
        from failwell.kb.postmortem import ContributingFactor, Postmortem, TimelineEntry

        if not self.alerts:
            raise ValueError("no alerts to write up")
        sdc = any(a.kind in ("replay-mismatch", "replica-mismatch") for a in self.alerts)
        mode = "silent-data-corruption" if sdc else "training-instability"
        first = self.alerts[0]
        today = dt.date.today()
        return Postmortem(
            id=id, title=title or f"Training run alert: {first.kind} in {first.series}",
            severity=Severity.HIGH, project=project, detected=today,
            summary=(f"The training monitor raised {len(self.alerts)} alert(s); the first at "
                     f"step {first.step}: {first.detail}. Draft opened from the monitor; "
                     "complete the impact, contributing factors and lessons."),
            ignored_signals=[a.detail for a in self.alerts[:10]],
            contributing_factors=[ContributingFactor(
                description="Signals raised by the training monitor (to be analysed).",
                patterns=["governance-lag"], failure_modes=[mode])],
            timeline=[TimelineEntry(today.isoformat(), f"step {a.step}: {a.kind} in "
                                    f"{a.series} ({a.value:.4g})") for a in self.alerts[:20]])
