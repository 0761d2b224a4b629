"""Replay of the canary batch on an executor that a faulty core in the training process cannot
reach, for :class:`~failwell.training.monitor.TrainingMonitor`'s silent-data-corruption check.

Why another executor: a core that computes wrong values corrupts every computation it runs,
so a replay on the same core, in the same process, agrees with the wrong result. The replay
runs the canary forward and backward from the live state somewhere else and compares the loss
(relative tolerance) and every gradient element (bit for bit where that holds):

* ``"process"``: a long-lived worker process, a fresh interpreter (``python -c`` importing
  only this module; never a fork, which would inherit the parent's state, nor multiprocessing's
  spawn, which re-runs the user's script). It is started in the background shortly before the
  first replay and reused until ``close()``. It receives the model once, pickled: architecture,
  weights, forward hooks, pruning hooks and ``torch.nn.utils.parametrize`` parametrizations
  (whose generated class refuses pickling, so they travel as the base class plus their
  parametrization modules and are re-attached there). Before each replay it receives every
  parameter and buffer as raw bytes (no pickling, no copy on the sending side), runs the canary
  pass on CPU with the trainer's thread count and math settings, and sends back the loss and
  the raw gradients. Same torch build, same thread count, same inputs and memory layout: the
  CPU kernels are deterministic, so gradients must be equal bit for bit. Classes, hooks and
  loss functions travel by name: they must be importable (module level, not ``__main__``).
* ``"device:<torch device>"`` (``"device:cuda:1"``, ``"device:cpu"``): a deep copy on another
  device in this process. Different kernels give different roundings, so gradients are compared
  within a tolerance; TF32 is off for both passes.
* ``"inline"``: a deep copy on the live model's device, in this process. It catches only
  transient faults: a persistent faulty core corrupts the replay too.
* ``"auto"`` (the default): another device when there is one (a GPU model replays on another
  GPU, else on the CPU; a CPU model replays on a GPU when there is one), else ``"process"``.

A model whose structure changes during the run (pruning applied, a hook added) is sent again:
each replay compares a structure key (modules, hook objects, parameter and buffer layout).

What does not travel, and so could make the two executors disagree without a fault: global
module hooks (``torch.nn.modules.module.register_module_forward_hook``), hooks on parameter
tensors (``param.register_hook``), and plain attributes changed during the run without a
structure change (the worker keeps the values it was sent). Hooks run once more per replay in
the training process, as the live canary pass runs the model.
"""

from __future__ import annotations

import contextlib
import copy
import io
import os
import pickle
import select
import struct
import subprocess
import sys
import threading
import time
import traceback
import types
import warnings
import weakref
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import torch

from failwell.errors import InputError

Canary = tuple[torch.Tensor, torch.Tensor]
LossFn = Callable[..., torch.Tensor]

#: gradient tolerance (relative to each tensor's largest live gradient) where the two executors
#: run different kernels (another device, or a GPU whose kernels may use atomics)
CROSS_DEVICE_GRAD_TOL = 1e-4


class ReplayError(InputError):
    """The replay cannot be set up for this model; the message says why and what to do."""


class ReplayUnavailable(RuntimeError):
    """The replay did not run this time (the worker died, hung or failed): not evidence of a
    fault, so the monitor warns and raises no alert."""


# -- the canary pass, the same code on every executor ----------------------------------------


def unwrap(model: torch.nn.Module) -> torch.nn.Module:
    """The module inside a data-parallel wrapper: a canary backward through DDP would join its
    gradient all-reduce."""
    wrappers = (torch.nn.parallel.DistributedDataParallel, torch.nn.DataParallel)
    while isinstance(model, wrappers):
        model = model.module
    return model


def canary_pass(model: torch.nn.Module, params: Sequence[torch.Tensor], canary: Canary,
                loss_fn: LossFn) -> tuple[float, list[torch.Tensor]]:
    """The canary loss and its gradients with respect to ``params``, in eval mode: no dropout,
    no running-statistics or power-iteration updates, so the pass is deterministic and leaves
    the live state as it was. ``autograd.grad`` leaves every ``.grad`` untouched; each module's
    own training flag is restored afterwards."""
    x, y = canary
    modes = [(module, module.training) for module in model.modules()]
    model.eval()
    try:
        with torch.enable_grad():
            loss = loss_fn(model(x), y)
            if loss.requires_grad and params:
                grads = list(torch.autograd.grad(loss, list(params), allow_unused=True))
            else:
                grads = [None] * len(params)
    finally:
        for module, mode in modes:
            module.training = mode
    return float(loss.detach()), [torch.zeros_like(p) if g is None else g.detach()
                                  for p, g in zip(params, grads, strict=True)]


@contextlib.contextmanager
def full_precision() -> Iterator[None]:
    """TF32 off while the canary passes run, so that a GPU's result can be compared with a
    CPU's; the user's settings are restored."""
    if not torch.cuda.is_available():
        yield
        return
    with warnings.catch_warnings():  # torch may call these flags "to be deprecated"
        warnings.simplefilter("ignore")
        matmul, cudnn = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    try:
        yield
    finally:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.backends.cuda.matmul.allow_tf32 = matmul
            torch.backends.cudnn.allow_tf32 = cudnn


def state_items(model: torch.nn.Module) -> list[tuple[str, torch.Tensor]]:
    """Every parameter and buffer, non-persistent buffers included: they all feed the forward."""
    return [*model.named_parameters(remove_duplicate=True),
            *model.named_buffers(remove_duplicate=True)]


_HOOKS = ("_forward_pre_hooks", "_forward_hooks", "_backward_pre_hooks", "_backward_hooks")


def structure_key(model: torch.nn.Module, canary: Canary) -> tuple:
    """What the replica was built from, short of the values: module types, hook objects,
    the parameter and buffer layout, the canary. A change means the replica is rebuilt."""
    modules = tuple((name, type(m), tuple(id(h) for d in _HOOKS for h in getattr(m, d).values()))
                    for name, m in model.named_modules())
    layout = tuple((name, t.dtype, tuple(t.shape), t.stride(), str(t.device))
                   for name, t in state_items(model))
    return modules, layout, id(canary[0]), id(canary[1])


def _live_device(model: torch.nn.Module) -> torch.device:
    for tensor in model.parameters():
        return tensor.device
    for tensor in model.buffers():
        return tensor.device
    return torch.device("cpu")


# -- executors ----------------------------------------------------------------------------


def grad_names(model: torch.nn.Module) -> list[str]:
    """The parameters whose canary gradients are compared, in a fixed order."""
    return [name for name, p in model.named_parameters() if p.requires_grad]


class Replayer:
    """Runs the canary pass from the live state on another executor. ``begin()`` hands the
    state over (rebuilding the replica first if the model's structure changed), ``finish()``
    returns the loss and the gradients, in the order of ``grad_names`` as of ``begin()``."""

    kind = "replayer"
    #: whether both executors run the same CPU kernels, so gradients must match bit for bit
    exact = False

    def __init__(self, model: torch.nn.Module, canary: Canary, loss_fn: LossFn):
        self.model, self.canary, self.loss_fn = unwrap(model), canary, loss_fn
        self.grad_names = grad_names(self.model)

    def start(self) -> None:
        """Prepare in the background, ahead of the first replay (a no-op where cheap)."""

    def wait_ready(self, timeout: float | None = None) -> None:
        """Block until the executor can replay."""

    def begin(self, step: int) -> None:
        """Hand the live state over."""

    def finish(self) -> tuple[float, list[torch.Tensor]]:
        """The replayed canary loss and gradients."""
        raise NotImplementedError

    def close(self) -> None:
        """Release what the executor holds."""

    def describe(self) -> str:
        return self.kind


class DeviceReplay(Replayer):
    """A deep copy (hooks and parametrizations included) on ``device``, in this process;
    ``device=None`` is the live model's own device (``"inline"``)."""

    def __init__(self, model: torch.nn.Module, canary: Canary, loss_fn: LossFn,
                 device: torch.device | str | None = None):
        super().__init__(model, canary, loss_fn)
        self.device = None if device is None else torch.device(device)
        self.kind = "inline" if device is None else f"device:{self.device}"
        self._copy: torch.nn.Module | None = None
        self._key: tuple | None = None
        self._targets: list[tuple[torch.Tensor, torch.Tensor]] = []
        self._params: list[torch.Tensor] = []
        self._canary: Canary | None = None
        live = _live_device(self.model)
        target = self.device or live
        self.exact = live.type == "cpu" and target.type == "cpu"

    def _build(self, key: tuple) -> None:
        self.grad_names = grad_names(self.model)
        replica = copy.deepcopy(self.model)
        if self.device is not None:
            replica = replica.to(self.device)
        mine = dict(state_items(replica))
        self._targets = [(mine[name], tensor) for name, tensor in state_items(self.model)]
        params = dict(replica.named_parameters())
        self._params = [params[name] for name in self.grad_names]
        device = self.device or _live_device(self.model)
        self._canary = (self.canary[0].to(device), self.canary[1].to(device))
        self._copy, self._key = replica, key

    def begin(self, step: int) -> None:
        key = structure_key(self.model, self.canary)
        if self._copy is None or key != self._key:
            self._build(key)

    def finish(self) -> tuple[float, list[torch.Tensor]]:
        with torch.no_grad():
            for mine, live in self._targets:
                mine.copy_(live)
        with full_precision():
            return canary_pass(self._copy, self._params, self._canary, self.loss_fn)


class ProcessReplay(Replayer):
    """The canary pass in a long-lived worker process (see the module docstring)."""

    kind = "process"

    def __init__(self, model: torch.nn.Module, canary: Canary, loss_fn: LossFn, *,
                 start_timeout: float = 120.0, timeout: float = 300.0):
        super().__init__(model, canary, loss_fn)
        self.start_timeout, self.timeout = start_timeout, timeout
        self.exact = _live_device(self.model).type == "cpu"
        self.info: dict[str, Any] = {}  # what the worker reported when ready
        self._proc: subprocess.Popen | None = None
        self._starter: threading.Thread | None = None
        self._outcome: BaseException | None = None
        self._key: tuple | None = None
        self._pending = False
        self._grads: list[torch.Tensor] = []
        self._holder: dict[str, Any] = {}
        # the worker goes when this object does, or at exit, even without close()
        self._finalizer = weakref.finalize(self, _stop_worker, self._holder)
        check_transferable(self.model, loss_fn, canary)

    @property
    def pid(self) -> int | None:
        return None if self._proc is None else self._proc.pid

    def describe(self) -> str:
        return "a separate worker process"

    def start(self) -> None:
        if self._proc is not None:
            return
        self._key = structure_key(self.model, self.canary)
        self.grad_names = grad_names(self.model)
        # pickled here, in the training thread: a consistent snapshot of the model
        payload = _payload(self.model, self.grad_names, self.canary, self.loss_fn)
        self._grads = [torch.empty(p.shape, dtype=p.dtype) for p in self._grad_params()]
        package = str(Path(__file__).resolve().parents[2])
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [package, env.get("PYTHONPATH")]))
        # idle OpenMP threads sleep rather than spin: the worker leaves the cores to the
        # trainer between replays (scheduling only: the results do not change)
        env["OMP_WAIT_POLICY"] = "PASSIVE"
        self._proc = subprocess.Popen(
            [sys.executable, "-c", "from failwell.training.replay import _worker; _worker()"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, bufsize=0, env=env)
        self._outcome = None
        # read in the training thread: OpenMP's thread count is a per-thread setting
        settings = {"sys_path": list(sys.path), "threads": torch.get_num_threads(),
                    "matmul_precision": torch.get_float32_matmul_precision(),
                    "mkldnn": torch.backends.mkldnn.enabled,
                    "deterministic": torch.are_deterministic_algorithms_enabled(),
                    "warn_only": torch.is_deterministic_algorithms_warn_only_enabled(),
                    "default_dtype": torch.get_default_dtype()}
        self._starter = threading.Thread(target=self._handshake, args=(settings, payload),
                                         daemon=True, name="failwell-replay-start")
        self._holder.update(proc=self._proc, starter=self._starter, owner=os.getpid())
        self._starter.start()

    def _grad_params(self) -> list[torch.Tensor]:
        params = dict(self.model.named_parameters())
        return [params[name] for name in self.grad_names]

    def _handshake(self, settings: dict[str, Any], payload: bytes) -> None:
        """In a thread: send the model while the worker imports torch, then read its answer."""
        try:
            fd = self._proc.stdin.fileno()
            _send(fd, settings)
            _write(fd, struct.pack("<Q", len(payload)))
            _write(fd, payload)
            answer = _recv(self._proc.stdout.fileno(), time.monotonic() + self.start_timeout)
            if answer[0] == "error":
                raise ReplayError(f"The replay worker could not rebuild the model: {answer[1]}"
                                  f"{_ADVICE}")
            self.info = answer[1]
        except BaseException as exc:  # reported to the training thread by wait_ready()
            self._outcome = exc

    def wait_ready(self, timeout: float | None = None) -> None:
        if self._starter is None:
            self.start()
        self._starter.join(self.start_timeout if timeout is None else timeout)
        if self._starter.is_alive():
            self._reset()
            raise ReplayUnavailable(f"the replay worker was not ready within "
                                    f"{self.start_timeout:.0f} s")
        if self._outcome is not None:
            outcome = self._outcome
            self._reset()
            if isinstance(outcome, ReplayError):
                raise outcome
            raise ReplayUnavailable(f"the replay worker failed to start: {outcome!r}")

    def begin(self, step: int) -> None:
        if self._proc is not None and structure_key(self.model, self.canary) != self._key:
            self._reset()  # pruning applied, a hook added...: send the model again
        self.wait_ready()
        try:
            fd = self._proc.stdin.fileno()
            _send(fd, ("replay", step))
            for _, tensor in state_items(self.model):
                _write(fd, _as_bytes(tensor.detach().cpu().contiguous()))
        except OSError as exc:
            self._reset()
            raise ReplayUnavailable(f"the replay worker is gone ({exc})") from None
        self._pending = True

    def finish(self) -> tuple[float, list[torch.Tensor]]:
        if not self._pending:
            raise RuntimeError("finish() without begin()")
        self._pending = False
        deadline = time.monotonic() + self.timeout
        try:
            fd = self._proc.stdout.fileno()
            answer = _recv(fd, deadline)
            if answer[0] == "error":
                raise ReplayUnavailable(f"the replay worker failed: {answer[1]}")
            for grad in self._grads:
                _read_into(fd, _as_bytes(grad), deadline)
        except (OSError, EOFError, TimeoutError) as exc:
            self._reset()
            raise ReplayUnavailable(f"no answer from the replay worker ({exc!r})") from None
        except ReplayUnavailable:
            self._reset()
            raise
        return answer[1], self._grads

    def _reset(self) -> None:
        """Stop the worker; the next replay starts a fresh one."""
        _stop_worker(self._holder)
        self._proc = self._starter = None
        self._pending = False

    def close(self) -> None:
        self._reset()


def _stop_worker(holder: dict[str, Any]) -> None:
    """Ask the worker to leave (closing its stdin is enough), then make sure it has. During
    the handshake it is killed instead (a message would interleave with the model being sent).
    Only the process that started it stops it (not a fork that inherited this object)."""
    proc, starter = holder.pop("proc", None), holder.pop("starter", None)
    if proc is None or holder.pop("owner", None) != os.getpid():
        return
    if starter is not None and starter.is_alive():
        proc.kill()  # its pipes break, so the handshake thread ends; joined below
    else:
        with contextlib.suppress(OSError):
            if proc.poll() is None:
                _send(proc.stdin.fileno(), ("close",))
            proc.stdin.close()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    if starter is not None:
        starter.join(10)
    for stream in (proc.stdin, proc.stdout):  # only once no thread uses them
        with contextlib.suppress(OSError):
            stream.close()


_ADVICE = ("\nThe worker receives the model pickled: classes, hooks and the loss function "
           "travel by name, so they must be importable, defined at module level outside the "
           "script being run (__main__ is not run there). Move them to a module, or pass "
           "replay='device:...' or replay='inline' (in this process: it cannot catch a "
           "persistent faulty core).")


def make_replayer(spec: str | Replayer, model: torch.nn.Module, canary: Canary,
                  loss_fn: LossFn) -> Replayer:
    """The executor that ``spec`` names (see the module docstring); ``"auto"`` resolves to
    another device or a worker process."""
    if isinstance(spec, Replayer):
        return spec
    if spec == "auto":
        spec = _auto(_live_device(unwrap(model)))
    if spec == "inline":
        return DeviceReplay(model, canary, loss_fn, None)
    if spec == "process":
        return ProcessReplay(model, canary, loss_fn)
    if isinstance(spec, str) and spec.startswith("device:"):
        try:
            device = torch.device(spec.removeprefix("device:"))
        except RuntimeError as exc:
            raise ReplayError(f"replay={spec!r}: {exc}") from None
        if device.type == "cuda" and (not torch.cuda.is_available() or (
                device.index or 0) >= torch.cuda.device_count()):
            raise ReplayError(f"replay={spec!r}: this machine has "
                              f"{torch.cuda.device_count()} CUDA device(s).")
        return DeviceReplay(model, canary, loss_fn, device)
    raise ReplayError(f"replay={spec!r}: expected 'auto', 'process', 'inline' or "
                      "'device:<torch device>' (e.g. 'device:cuda:1').")


def _auto(live: torch.device) -> str:
    if live.type == "cuda":
        count = torch.cuda.device_count()
        return f"device:cuda:{((live.index or 0) + 1) % count}" if count > 1 else "device:cpu"
    if live.type != "cpu":
        return "device:cpu"
    return "device:cuda:0" if torch.cuda.is_available() else "process"


# -- moving the model to the worker ---------------------------------------------------------


class _ModelPickler(pickle.Pickler):
    """Pickles the model for the worker. Parametrized modules (their generated class refuses
    pickling) travel as their base class with the parametrizations in their state, re-attached
    on arrival; accelerator tensors travel as CPU tensors. Anything defined in ``__main__`` is
    refused: the worker does not run the user's script, so it could not be found there. With
    ``dry_run`` tensor data is left out: a cheap check that the model can travel at all."""

    def __init__(self, file: io.BytesIO, *, dry_run: bool = False):
        super().__init__(file, protocol=pickle.HIGHEST_PROTOCOL)
        self.dry_run = dry_run

    def persistent_id(self, obj: Any) -> Any:
        if self.dry_run and isinstance(obj, (torch.UntypedStorage, torch.TypedStorage)):
            return "storage"
        return None

    def reducer_override(self, obj: Any) -> Any:
        if isinstance(obj, (type, types.FunctionType)) and getattr(
                obj, "__module__", None) == "__main__":
            raise pickle.PicklingError(f"{obj.__qualname__} is defined in __main__")
        if isinstance(obj, torch.nn.Module) and torch.nn.utils.parametrize.is_parametrized(obj):
            base = type(obj).__bases__[0]
            return _new_module, (base,), dict(obj.__dict__), None, None, _set_parametrized_state
        if not self.dry_run and isinstance(obj, torch.Tensor) and obj.device.type not in (
                "cpu", "meta"):
            cpu = obj.detach().to("cpu")
            return _rebuild_on_cpu, (cpu, obj.requires_grad,
                                     isinstance(obj, torch.nn.Parameter))
        return NotImplemented


def _new_module(cls: type) -> torch.nn.Module:
    return cls.__new__(cls)


def _set_parametrized_state(module: torch.nn.Module, state: dict[str, Any]) -> None:
    """Re-attach the parametrizations exactly as ``register_parametrization`` left them (no
    ``right_inverse`` call: the state is already the parametrized one)."""
    from torch.nn.utils import parametrize

    torch.nn.Module.__setstate__(module, state)
    parametrize._inject_new_class(module)
    for name in module.parametrizations:
        parametrize._inject_property(module, name)


def _rebuild_on_cpu(tensor: torch.Tensor, requires_grad: bool, parameter: bool
                    ) -> torch.Tensor:
    if parameter:
        return torch.nn.Parameter(tensor, requires_grad=requires_grad)
    return tensor.requires_grad_(requires_grad)


def check_transferable(model: torch.nn.Module, loss_fn: LossFn, canary: Canary) -> None:
    """Raise :class:`ReplayError` now, rather than at the first replay, when the model or the
    loss function cannot travel to the worker (a lambda or local hook, a ``__main__`` class)."""
    try:
        _ModelPickler(io.BytesIO(), dry_run=True).dump((model, loss_fn))
    except Exception as exc:  # pickle raises several types for the same problem
        raise ReplayError(f"The replay worker cannot receive this model: {exc}.{_ADVICE}"
                          ) from None


def _payload(model: torch.nn.Module, names: Sequence[str], canary: Canary, loss_fn: LossFn
             ) -> bytes:
    buffer = io.BytesIO()
    layout = [(name, t.dtype, tuple(t.shape)) for name, t in state_items(model)]
    try:
        _ModelPickler(buffer).dump({
            "model": model, "loss_fn": loss_fn, "grad_names": list(names),
            "canary": (canary[0].detach().cpu(), canary[1].detach().cpu()), "layout": layout})
    except Exception as exc:
        raise ReplayError(f"The replay worker cannot receive this model: {exc}.{_ADVICE}"
                          ) from None
    return buffer.getvalue()


# -- the wire: length-prefixed pickles for messages, raw bytes for tensors -------------------


def _as_bytes(tensor: torch.Tensor) -> memoryview:
    """A contiguous CPU tensor's memory as bytes, without a copy."""
    return memoryview(tensor.reshape(-1).view(torch.uint8).numpy())


def _write(fd: int, data: bytes | memoryview) -> None:
    view = memoryview(data).cast("B")
    while len(view):
        view = view[os.write(fd, view):]


def _read_into(fd: int, data: bytes | memoryview, deadline: float | None) -> None:
    view = memoryview(data).cast("B")
    raw = io.FileIO(fd, "rb", closefd=False)
    got = 0
    while got < len(view):
        if deadline is not None and os.name == "posix":
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                raise TimeoutError("the replay worker did not answer in time")
        count = raw.readinto(view[got:])
        if not count:
            raise EOFError("the other end closed the pipe")
        got += count


def _send(fd: int, obj: Any) -> None:
    data = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    _write(fd, struct.pack("<Q", len(data)) + data)


def _recv(fd: int, deadline: float | None = None) -> Any:
    return pickle.loads(_recv_bytes(fd, deadline))


def _recv_bytes(fd: int, deadline: float | None = None) -> bytearray:
    head = bytearray(8)
    _read_into(fd, head, deadline)
    data = bytearray(struct.unpack("<Q", head)[0])
    _read_into(fd, data, deadline)
    return data


# -- the worker -----------------------------------------------------------------------------


def _worker() -> None:
    """The worker: serve, then leave at once (interpreter teardown with torch loaded takes a
    second, which ``close()`` would wait for)."""
    try:
        _serve()
    finally:
        sys.stderr.flush()
        os._exit(0)


def _serve() -> None:
    """Rebuild the model, then answer replays until told to stop or until stdin closes (the
    training process is gone)."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is for the trainer, which closes us
    inp, out = 0, os.dup(1)
    os.dup2(2, 1)  # anything the model's modules print goes to stderr, not into the channel
    try:
        settings = _recv(inp)
        payload = _recv_bytes(inp)
    except EOFError:
        return
    try:
        sys.path[:] = settings["sys_path"]
        torch.set_num_threads(settings["threads"])
        torch.set_float32_matmul_precision(settings["matmul_precision"])
        torch.backends.mkldnn.enabled = settings["mkldnn"]
        torch.use_deterministic_algorithms(settings["deterministic"],
                                           warn_only=settings["warn_only"])
        torch.set_default_dtype(settings["default_dtype"])
        spec = pickle.loads(payload)
        model, loss_fn, canary = spec["model"], spec["loss_fn"], spec["canary"]
        mine = dict(state_items(model))
        targets = []
        for name, dtype, shape in spec["layout"]:
            tensor = mine.get(name)
            if tensor is None or tensor.dtype != dtype or tuple(tensor.shape) != shape:
                raise ReplayError(f"{name}: the rebuilt model's layout differs")
            targets.append(tensor.detach())
        params = dict(model.named_parameters())
        grad_params = [params[name] for name in spec["grad_names"]]
        canary_pass(model, grad_params, canary, loss_fn)  # first-call costs paid here
    except Exception as exc:
        _send(out, ("error", f"{type(exc).__name__}: {exc}"))
        return
    _send(out, ("ready", {"pid": os.getpid(), "threads": torch.get_num_threads(),
                          "torch": torch.__version__}))
    while True:
        try:
            message = _recv(inp)
        except EOFError:
            return
        if message[0] == "close":
            return
        try:
            for tensor in targets:
                if tensor.is_contiguous():
                    _read_into(inp, _as_bytes(tensor), None)
                else:
                    staging = torch.empty(tensor.shape, dtype=tensor.dtype)
                    _read_into(inp, _as_bytes(staging), None)
                    tensor.copy_(staging)
            loss, grads = canary_pass(model, grad_params, canary, loss_fn)
        except EOFError:
            return
        except Exception:
            _send(out, ("error", traceback.format_exc(limit=3)))
            continue
        _send(out, ("result", loss))
        for grad in grads:
            _write(out, _as_bytes(grad.contiguous()))
