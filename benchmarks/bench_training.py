"""Training-monitor overhead at default settings, against the same loop without it.

    python benchmarks/bench_training.py

Two CPU models: an MLP (784-512-512-10, batch 128) and a small CNN (two conv layers on
1x28x28, batch 64). Each loop runs with and without the monitor, alternating in blocks so
that machine noise hits both alike; the ratio of median block times is the overhead. The
monitor's own timers give each check's share of the step time.

The replay runs in a worker process (the default on a machine without a GPU). The worker is
started during the warm-up and waited for, so that the blocks measure the steady state; its
one-off start time is printed on its own (in a run it starts in the background shortly before
the first replay).
"""

from __future__ import annotations

import statistics
import sys
import time

import torch

from failwell.training import TrainingMonitor

BLOCK, BLOCKS = 50, 40


def mlp():
    model = torch.nn.Sequential(torch.nn.Linear(784, 512), torch.nn.ReLU(),
                                torch.nn.Linear(512, 512), torch.nn.ReLU(),
                                torch.nn.Linear(512, 10))
    return model, torch.randn(128, 784), torch.randint(0, 10, (128,))


def cnn():
    model = torch.nn.Sequential(
        torch.nn.Conv2d(1, 16, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
        torch.nn.Conv2d(16, 32, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
        torch.nn.Flatten(), torch.nn.Linear(32 * 7 * 7, 10))
    return model, torch.randn(64, 1, 28, 28), torch.randint(0, 10, (64,))


def block(model, optimizer, x, y, monitor) -> float:
    start = time.perf_counter()
    for _ in range(BLOCK):
        optimizer.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(x), y)
        loss.backward()
        optimizer.step()
        if monitor is not None:
            monitor.step(loss)
    return (time.perf_counter() - start) / BLOCK


def noise_floor(build) -> float:
    """The same loop in both arms (no monitor anywhere): the difference is machine noise."""
    torch.manual_seed(0)
    a, x, y = build()
    b, _, _ = build()
    opt_a = torch.optim.SGD(a.parameters(), lr=0.01, momentum=0.9)
    opt_b = torch.optim.SGD(b.parameters(), lr=0.01, momentum=0.9)
    first, second = [], []
    for i in range(BLOCKS // 2):
        pair = [(first, a, opt_a), (second, b, opt_b)]
        for times, model, optimizer in (pair if i % 2 == 0 else pair[::-1]):
            times.append(block(model, optimizer, x, y, None))
    return statistics.median(second) / statistics.median(first) - 1


def measure(name: str, build) -> None:
    torch.manual_seed(0)
    plain_model, x, y = build()
    watched_model, _, _ = build()
    watched_model.load_state_dict(plain_model.state_dict())
    plain_opt = torch.optim.SGD(plain_model.parameters(), lr=0.01, momentum=0.9)
    watched_opt = torch.optim.SGD(watched_model.parameters(), lr=0.01, momentum=0.9)
    monitor = TrainingMonitor(watched_model, watched_opt, canary=(x[:32], y[:32]))
    started = time.perf_counter()
    monitor.start_replay()  # the worker, once: ready before the measured blocks
    start_s = time.perf_counter() - started
    block(plain_model, plain_opt, x, y, None)  # warm up both
    block(watched_model, watched_opt, x, y, monitor)
    base = dict.fromkeys(monitor.overhead(), 0.0)
    base.update(monitor.overhead())
    base_calls = monitor.timings.calls.get("replay", 0)
    steps_before = monitor.steps
    plain, watched = [], []
    for i in range(BLOCKS):  # ABBA order, so drift over time hits both arms alike
        pair = [(plain, plain_model, plain_opt, None),
                (watched, watched_model, watched_opt, monitor)]
        for times, model, optimizer, mon in (pair if i % 2 == 0 else pair[::-1]):
            times.append(block(model, optimizer, x, y, mon))
    step_plain, step_watched = statistics.median(plain), statistics.median(watched)
    overhead = step_watched / step_plain - 1
    fastest = min(watched) / min(plain) - 1  # least disturbed block of each arm
    print(f"{name}: step {1000 * step_plain:.2f} ms without, {1000 * step_watched:.2f} ms "
          f"with the monitor -> overhead {100 * overhead:+.1f}% on medians, "
          f"{100 * fastest:+.1f}% on fastest blocks (target < 3%)")
    steps = monitor.steps - steps_before
    for check, seconds in monitor.overhead().items():
        share = (seconds - base[check]) / steps / step_plain
        print(f"    {check:7s} {100 * share:5.2f}% of a step")
    own = sum(s - base[c] for c, s in monitor.overhead().items()) / steps / step_plain
    print(f"    monitor's own timers, all checks: {100 * own:.2f}% of a step")
    replays = monitor.timings.calls.get("replay", 0) - base_calls
    if replays:
        each = (monitor.overhead()["replay"] - base["replay"]) / replays
        print(f"    replay on {monitor.replayer.describe()}: {1000 * each:.1f} ms each "
              f"({each / step_plain:.1f} steps' worth, {replays} replays); worker start "
              f"{start_s:.2f} s, once")
    print(f"    noise floor (same loop in both arms): {100 * noise_floor(build):+.1f}%")
    print(f"    alerts: {len(monitor.alerts)}")
    monitor.close()


def main() -> int:
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"{BLOCKS} blocks of {BLOCK} steps each way")
    measure("MLP 784-512-512-10, batch 128", mlp)
    measure("CNN conv16-conv32-fc, batch 64", cnn)
    return 0


if __name__ == "__main__":
    sys.exit(main())
