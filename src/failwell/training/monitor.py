"""``TrainingMonitor``: drop into any PyTorch loop and call ``monitor.step(loss)`` after
``optimizer.step()``.

What it watches, and how often at the defaults (chosen to keep the overhead under 3 % of a
step on small CPU models; see ``benchmarks/bench_training.py``):

* every step: the loss (finite; upward spikes against a median/MAD band in log space);
* every ``every`` (10) steps: per-layer gradient and weight norms in one fused call each
  (non-finite values; spikes; weight norms that jump either way);
* every ``stats_every`` (100) steps: per-layer update-to-weight ratios and extreme weights;
* every ``replay_every`` (500) steps, with a canary batch: replay on another executor. The
  canary loss and gradients are computed on the live model and again from the same state
  where a fault in the training process cannot follow (``replay=``: a worker process by
  default, or another device; see :mod:`failwell.training.replay`). The losses must agree
  within ``replay_tol``, the gradients bit for bit (CPU in both processes) or within
  ``replay_grad_tol`` (across devices). A faulty core that silently computes wrong values
  disagrees.

An alert is raised once per series until that series is back inside its band.
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from failwell.training.anomaly import RobustBand
from failwell.training.replay import (
    CROSS_DEVICE_GRAD_TOL,
    Replayer,
    ReplayError,
    ReplayUnavailable,
    canary_pass,
    full_precision,
    make_replayer,
    unwrap,
)


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
    """``replay`` chooses where the canary replay runs: ``"auto"`` (another device when there
    is one, else a worker process), ``"process"``, ``"device:cuda:1"`` (any torch device) or
    ``"inline"`` (this process: catches transient faults only). With ``"auto"``, a model that
    cannot travel to a worker (a lambda hook, a class defined in ``__main__``) falls back to
    ``"inline"`` with a warning; an explicit ``"process"`` raises
    :class:`~failwell.training.replay.ReplayError` instead. ``replay_grad_tol`` (relative to
    each tensor's largest gradient) defaults to 0 where both executors run CPU kernels, else
    1e-4. Call ``close()`` (or use ``with``) to stop the worker."""

    def __init__(self, model: torch.nn.Module, optimizer: torch.optim.Optimizer | None = None,
                 *, canary: tuple[torch.Tensor, torch.Tensor] | None = None,
                 loss_fn: Callable | None = None, every: int = 10, stats_every: int = 100,
                 replay_every: int = 500, window: int = 100, warmup: int = 20,
                 threshold: float = 8.0, replay_tol: float = 1e-5,
                 replay: str | Replayer = "auto", replay_grad_tol: float | None = None,
                 store: str | Path | None = None, run_name: str = "run",
                 on_alert: Callable[[Alert], None] | None = None):
        self.model, self.optimizer = model, optimizer
        self.loss_fn = loss_fn or torch.nn.functional.cross_entropy
        # fresh, contiguous copies: both executors then see the same memory layout
        self.canary = None if canary is None else tuple(
            t.detach().clone(memory_format=torch.contiguous_format) for t in canary)
        self.every, self.stats_every, self.replay_every = every, stats_every, replay_every
        self.threshold, self.replay_tol = threshold, replay_tol
        self.replay_mode, self._grad_tol = replay, replay_grad_tol
        self.replayer: Replayer | None = None
        self._replay_model = unwrap(model)
        if self.canary is not None:
            self.replayer = self._make_replayer(replay)
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
        self.store = None
        if store is not None:
            from failwell.training.store import RunStore

            self.store = RunStore(store, run_name=run_name, config={
                "every": every, "stats_every": stats_every, "replay_every": replay_every,
                "window": window, "warmup": warmup, "threshold": threshold,
                "replay": self.replayer.kind if self.replayer else None,
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
        if self.replayer is not None and step >= self.replay_every - max(
                1, self.replay_every // 10):
            # a tenth of an interval ahead: the worker starts in the background (idempotent)
            self.replayer.start()
            t2 = time.perf_counter()
            self.timings.replay += t2 - t1  # pickling the model for the worker, once
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

    def _make_replayer(self, spec: str | Replayer) -> Replayer:
        try:
            return make_replayer(spec, self._replay_model, self.canary, self.loss_fn)
        except ReplayError as exc:
            if spec != "auto":
                raise
            self._fall_back(exc)
            return make_replayer("inline", self._replay_model, self.canary, self.loss_fn)

    def _fall_back(self, exc: ReplayError) -> None:
        warnings.warn(f"{exc}\nThe canary replay falls back to replay='inline', which cannot "
                      "catch a persistent faulty core.", RuntimeWarning, stacklevel=4)

    def start_replay(self, wait: bool = True) -> None:
        """Start the replay executor now rather than shortly before the first replay (a
        worker process takes a few seconds to import torch); with ``wait``, until it is ready."""
        if self.replayer is None:
            return
        self.replayer.start()
        if wait:
            try:
                self.replayer.wait_ready()
            except ReplayError as exc:
                if self.replay_mode != "auto":
                    raise
                self._fall_back(exc)
                self.replayer = self._make_replayer("inline")

    def canary_loss(self, model: torch.nn.Module | None = None) -> float:
        """The canary loss of ``model`` (the live one by default), in eval mode, without
        gradients; each module's training flag is restored."""
        model = model or self.model
        x, y = self.canary
        modes = [(module, module.training) for module in model.modules()]
        model.eval()
        try:
            with torch.no_grad():
                return float(self.loss_fn(model(x), y))
        finally:
            for module, mode in modes:
                module.training = mode

    def _replay(self, step: int, recorded: dict[str, float]) -> list[Alert]:
        try:
            self.replayer.begin(step)
        except ReplayError as exc:  # the worker could not rebuild the model
            if self.replay_mode != "auto":
                raise
            self._fall_back(exc)
            self.replayer = self._make_replayer("inline")
            self.replayer.begin(step)
        except ReplayUnavailable as exc:
            warnings.warn(f"canary replay skipped at step {step}: {exc}", RuntimeWarning,
                          stacklevel=3)
            return []
        try:
            replayed, replayed_grads = self.replayer.finish()
        except ReplayUnavailable as exc:
            warnings.warn(f"canary replay skipped at step {step}: {exc}", RuntimeWarning,
                          stacklevel=3)
            return []
        # one after the other, not overlapped: both passes use all the trainer's threads, and
        # oversubscribed cores made an overlapped replay several times slower
        names = self.replayer.grad_names  # as of begin(): a pruned model has new names
        params = dict(self._replay_model.named_parameters())
        with full_precision():
            live, live_grads = canary_pass(self._replay_model, [params[n] for n in names],
                                           self.canary, self.loss_fn)
        recorded["canary_loss"] = live
        where = self.replayer.describe()
        if not math.isfinite(live):
            return self._raise(step, "nonfinite", "canary_loss", live,
                               f"canary loss is {live} at step {step}")
        new = []
        if not math.isclose(live, replayed, rel_tol=self.replay_tol, abs_tol=1e-12):
            new += self._raise(step, "replay-mismatch", "canary_loss", live,
                               f"canary loss {live!r} in the training process, {replayed!r} "
                               f"replayed from the same state on {where} at step {step}: a "
                               "computation differed (faulty core or silent data corruption)")
        else:
            self.open.discard("canary_loss")
        differs = self._gradient_difference(names, live_grads, replayed_grads)
        if differs is not None:
            name, diff, count = differs
            new += self._raise(step, "replay-mismatch", "canary_gradients", diff,
                               f"canary gradients of {name} differ in {count} element(s) (by "
                               f"up to {diff:.3g}) between the training process and {where} "
                               f"at step {step}: a computation differed (faulty core or "
                               "silent data corruption)")
        else:
            self.open.discard("canary_gradients")
        return new

    def _gradient_difference(self, names: list[str], live: list[torch.Tensor],
                             replayed: list[torch.Tensor]) -> tuple[str, float, int] | None:
        """The first parameter whose canary gradients differ beyond the tolerance: bit for
        bit (0) when both executors run CPU kernels, as the same kernels on the same inputs
        with the same thread count are deterministic; else ``CROSS_DEVICE_GRAD_TOL``."""
        tol = self._grad_tol
        if tol is None:
            tol = 0.0 if self.replayer.exact else CROSS_DEVICE_GRAD_TOL
        for name, a, b in zip(names, live, replayed, strict=True):
            b = b.to(a.device)
            if torch.equal(a, b):
                continue
            same = (a == b) | (a.isnan() & b.isnan())
            delta = torch.where(same, 0.0, (a.double() - b.double()).abs().nan_to_num(
                nan=math.inf))
            bad = delta > tol * float(a.abs().nan_to_num(nan=0.0, posinf=0.0).max())
            if bool(bad.any()):
                return name, float(delta.max()), int(bad.sum())
        return None

    # -- after the run -----------------------------------------------------------------------

    def overhead(self) -> dict[str, float]:
        """Seconds spent in each check so far."""
        return {k: v for k, v in asdict(self.timings).items() if k != "calls"}

    def close(self) -> None:
        """Stop the replay worker and write the buffered metrics (the store also flushes on a
        timer and at exit; the worker also stops when the monitor is collected or at exit)."""
        if self.replayer is not None:
            self.replayer.close()
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
