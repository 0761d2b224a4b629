"""Training health monitor: each injected fault class is caught within a stated number of
steps; clean runs over many seeds raise nothing."""

import math

import pytest

torch = pytest.importorskip("torch")

from failwell.training import TrainingMonitor, faults  # noqa: E402
from failwell.training.checkpoint import (  # noqa: E402
    CheckpointError,
    load_checkpoint,
    save_checkpoint,
)


def task(seed: int, arch: str = "mlp"):
    torch.manual_seed(seed)
    if arch == "mlp":
        x = torch.randn(2048, 20)
        y = (x @ torch.randn(20, 3)).argmax(1)
        model = torch.nn.Sequential(torch.nn.Linear(20, 64), torch.nn.ReLU(),
                                    torch.nn.Linear(64, 3))
    else:
        x = torch.randn(1024, 1, 8, 8)
        y = (x.mean((1, 2, 3)) > 0).long()
        model = torch.nn.Sequential(torch.nn.Conv2d(1, 8, 3), torch.nn.ReLU(),
                                    torch.nn.Flatten(), torch.nn.Linear(8 * 36, 2))
    optimizer = (torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9) if seed % 2
                 else torch.optim.Adam(model.parameters(), lr=1e-3))
    return x, y, model, optimizer


def train(seed=1, steps=200, arch="mlp", inject=None, **options):
    """``inject(step, model) -> None`` runs after backward (``when="grad"``) or after the
    optimizer step; returns the monitor."""
    x, y, model, optimizer = task(seed, arch)
    monitor = TrainingMonitor(model, optimizer, canary=(x[:64], y[:64]), **options)
    generator = torch.Generator().manual_seed(seed)
    for step in range(1, steps + 1):
        idx = torch.randint(0, len(x), (64,), generator=generator)
        optimizer.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(x[idx]), y[idx])
        loss.backward()
        if inject and inject[0] == step and inject[1] == "grad":
            inject[2](model)
        optimizer.step()
        if inject and inject[0] == step and inject[1] == "weight":
            inject[2](model)
        monitor.step(loss)
    return monitor


def test_clean_runs_raise_no_alert():
    runs = [train(seed, steps=300, arch=arch) for arch in ("mlp", "cnn") for seed in range(8)]
    alerts = [(a.step, a.series) for m in runs for a in m.alerts]
    assert alerts == []  # 16 runs x 300 steps: measured false-alert rate 0


FAULTS = [
    ("weight exponent bit", "weight", lambda m: faults.flip_weight(m, index=5, bit=30)),
    ("gradient exponent bit", "grad", lambda m: faults.flip_gradient(m, index=5, bit=30)),
    ("loss-scale overflow", "grad", faults.overflow_gradients),
    ("a row of weights scaled 2^8", "weight", lambda m: m[0].weight.data[0].mul_(256.0)),
]


@pytest.mark.parametrize(("name", "when", "fault"), FAULTS)
def test_injected_faults_are_caught_within_ten_steps_at_defaults(name, when, fault):
    monitor = train(inject=(153, when, fault))
    assert monitor.alerts, name
    assert 153 <= monitor.alerts[0].step < 163, (name, monitor.alerts[0])


@pytest.mark.parametrize(("name", "when", "fault"), FAULTS)
def test_checking_norms_every_step_catches_them_at_the_step(name, when, fault):
    monitor = train(inject=(153, when, fault), every=1)
    assert monitor.alerts[0].step == 153, (name, monitor.alerts[0])


def test_a_faulty_kernel_is_caught_by_the_replay_in_a_worker_process():
    """The fault is in the training process's addmm kernel (torch.library), not in the model:
    the worker's replay does not have it (tests/training/test_replay.py has the rest)."""
    x, y, model, optimizer = task(3)
    monitor = TrainingMonitor(model, optimizer, canary=(x[:64], y[:64]), replay_every=25)
    kernel = faults.FaultyKernel("addmm", bit=18)  # a small error: no norm can see it
    try:
        for step in range(1, 201):
            kernel.active = step >= 110
            optimizer.zero_grad()
            loss = torch.nn.functional.cross_entropy(model(x[:64]), y[:64])
            loss.backward()
            optimizer.step()
            monitor.step(loss)
    finally:
        kernel.active = False
        monitor.close()
    replay = [a for a in monitor.alerts if a.kind == "replay-mismatch"]
    assert replay and 110 <= replay[0].step <= 125  # within replay_every steps
    assert all(a.kind == "replay-mismatch" for a in monitor.alerts)


def test_checkpoints_are_validated(tmp_path, monkeypatch):
    monkeypatch.setenv("FAILWELL_CHECKPOINT_KEY", "test key")  # signed: no unsigned warning
    monitor = train(steps=40)
    model = monitor.model
    canary = monitor.canary_loss
    path = save_checkpoint(tmp_path / "ckpt.pt", model, canary_loss=canary(), step=40)
    fresh = task(1)[2]
    manifest = load_checkpoint(path, fresh, canary_loss_fn=canary)
    assert manifest["step"] == 40
    assert all(torch.equal(a, b) for a, b in zip(fresh.state_dict().values(),
                                                 model.state_dict().values(), strict=True))
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x10  # one flipped bit on disk
    path.write_bytes(bytes(data))
    untouched = task(2)[2]
    before = [t.clone() for t in untouched.state_dict().values()]
    with pytest.raises(CheckpointError, match="failed its content hash"):
        load_checkpoint(path, untouched, canary_loss_fn=canary)
    assert all(torch.equal(a, b) for a, b in zip(before, untouched.state_dict().values(),
                                                 strict=True))
    # consistent file, but the weights were corrupted before saving: the canary disagrees
    faults.flip_weight(model, index=0, bit=29)
    save_checkpoint(tmp_path / "bad.pt", model, canary_loss=1.2345, step=41)
    with pytest.raises(CheckpointError, match="canary loss"):
        load_checkpoint(tmp_path / "bad.pt", task(1)[2], canary_loss_fn=canary)


def test_run_record_report_and_postmortem(tmp_path):
    monitor = train(inject=(120, "weight", lambda m: faults.flip_weight(m, index=1, bit=30)),
                    store=tmp_path / "run.sqlite", run_name="drill", every=1)
    monitor.close()
    from failwell.training.report import render
    from failwell.training.store import read_run

    run = read_run(tmp_path / "run.sqlite")
    assert run["name"] == "drill" and len(run["series"]["loss"]) == 200
    assert run["alerts"][0]["step"] == 120
    html = render(tmp_path / "run.sqlite")
    assert "<polyline" in html and "step 120" in html and "stroke-dasharray" in html
    pm = monitor.draft_postmortem(id="drill-weight-flip", project="drill")
    from failwell.kb.store import KnowledgeBase

    kb = KnowledgeBase.open(f"sqlite:///{tmp_path / 'kb.sqlite'}", seed=False)
    kb.add(pm)
    stored = kb.get("drill-weight-flip").postmortem
    assert stored.status == "draft" and "training-instability" in stored.failure_modes
    assert "step 120" in stored.timeline[0].what


def test_overhead_is_reported_per_check():
    monitor = train(steps=200, replay_every=50)
    monitor.close()  # stops the replay worker
    overhead = monitor.overhead()
    assert set(overhead) == {"loss", "norms", "stats", "replay", "record"}
    assert overhead["norms"] > 0 and overhead["replay"] > 0 and math.isfinite(sum(
        overhead.values()))


def test_huggingface_callback_checks_before_the_optimizer_step():
    pytest.importorskip("transformers")
    from failwell.training.callbacks import huggingface_callback

    x, y, model, optimizer = task(1)
    callback = huggingface_callback(model)
    for step in range(1, 61):
        optimizer.zero_grad()
        torch.nn.functional.cross_entropy(model(x[:64]), y[:64]).backward()
        if step == 50:
            faults.overflow_gradients(model)
        callback.on_log(None, None, None, logs={"loss": 1.0})
        callback.on_pre_optimizer_step(None, None, None)
        optimizer.step()
    assert callback.monitor.alerts[0].step == 50


def test_a_run_that_never_calls_close_keeps_its_metrics(tmp_path):
    """The README snippet without close(), then a crash: metrics are on disk at exit."""
    import subprocess
    import sys

    from failwell.training.store import read_run

    script = f"""
import torch
from failwell.training import TrainingMonitor
torch.manual_seed(0)
model = torch.nn.Linear(4, 2)
opt = torch.optim.SGD(model.parameters(), lr=0.1)
x, y = torch.randn(64, 4), torch.randint(0, 2, (64,))
monitor = TrainingMonitor(model, opt, canary=(x[:16], y[:16]), every=1,
                          store={str(tmp_path / 'run.sqlite')!r})
for _ in range(30):
    opt.zero_grad()
    loss = torch.nn.functional.cross_entropy(model(x), y)
    loss.backward()
    opt.step()
    monitor.step(loss)
raise SystemExit(3)  # no close(): a crash at the end of the run
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 3, done.stderr
    run = read_run(tmp_path / "run.sqlite")
    assert len(run["series"]["loss"]) == 30  # nothing buffered was lost
