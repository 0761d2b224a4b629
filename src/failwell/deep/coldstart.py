"""Child process for :func:`failwell.deep.latency.cold_start`: import the runtime, load
the model, make the first call, and print one JSON line with the times, the process's
peak memory (runtime included) and the resident memory that loading and the first
call added."""

from __future__ import annotations

import json
import resource
import sys
import time


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def _current_mb() -> float:
    """Resident memory now (Linux); the peak where /proc is missing."""
    try:
        with open("/proc/self/status") as fh:
            line = next(ln for ln in fh if ln.startswith("VmRSS:"))
        return int(line.split()[1]) / 1024
    except (OSError, StopIteration):
        return _peak_mb()


def main(argv: list[str]) -> None:
    spec, sample_path = argv[0], argv[1]
    t0 = time.perf_counter()
    import numpy as np

    if spec.endswith(".onnx"):
        import onnxruntime  # noqa: F401
    else:
        import torch  # noqa: F401
    from failwell.deep.loading import load_network

    t1 = time.perf_counter()
    before = _current_mb()
    model = load_network(spec, trust="--trust" in argv,
                         integer_inputs="--integer-inputs" in argv)
    t2 = time.perf_counter()
    model.predict(np.load(sample_path))
    t3 = time.perf_counter()
    print(json.dumps({"import_ms": 1000 * (t1 - t0), "load_ms": 1000 * (t2 - t1),
                      "first_call_ms": 1000 * (t3 - t2), "cold_start_ms": 1000 * (t3 - t1),
                      "model_memory_mb": _current_mb() - before,
                      "peak_memory_mb": _peak_mb()}))


if __name__ == "__main__":
    main(sys.argv[1:])
