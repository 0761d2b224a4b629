"""Load a neural network and its evaluation arrays from the files a user has.

Models: ``.onnx`` (onnxruntime), ``.pt2`` (a ``torch.export`` archive: no pickle, no model
class needed), ``.pt``/``.pth`` holding a whole pickled module (only with ``trust``:
unpickling runs code) or ``module:function`` returning an ``nn.Module``. Arrays: ``.npz``
with the inputs under ``x`` (or ``X``/``images``/``inputs``) and labels under ``y`` (or
``labels``/``targets``).
"""

from __future__ import annotations

import functools
import hashlib
import importlib
import warnings
from pathlib import Path

import numpy as np

from failwell.deep.adapter import OnnxClassifier, TorchClassifier
from failwell.errors import InputError, ModelError, UntrustedModelError, require

INPUT_KEYS = ("x", "X", "images", "inputs")
LABEL_KEYS = ("y", "labels", "targets")


def load_network(spec: str | Path, *, trust: bool = False, integer_inputs: bool = False,
                 batch_size: int = 256, device: str | None = None
                 ) -> TorchClassifier | OnnxClassifier:
    """The model behind ``spec``; ``device`` is "cpu", "cuda" or None for the best one."""
    if device not in (None, "cpu", "cuda"):
        raise InputError(f"--device {device!r}: use cpu or cuda.")
    text = str(spec)
    path = Path(text)
    if not path.exists() and ":" in text and path.suffix.lower() not in (".pt", ".pth"):
        return TorchClassifier(_from_callable(text), batch_size=batch_size,
                               integer_inputs=integer_inputs, device=_device(device))
    if not path.is_file():
        raise InputError(f"No model file at {path}.")
    suffix = path.suffix.lower()
    if suffix == ".onnx":
        return OnnxClassifier(str(path), batch_size=batch_size)
    torch = require("torch", extra="torch", purpose="PyTorch models")
    if suffix == ".pt2":
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", FutureWarning)  # torch's own pytree notice
                program = torch.export.load(str(path))
                # the flat graph runs ~7x faster per call; the unflattened one keeps the
                # layer hierarchy, so Grad-CAM can hook a named layer
                return TorchClassifier(program.module(), batch_size=batch_size,
                                       integer_inputs=integer_inputs, device=_device(device),
                                       layered=functools.partial(_unflatten, torch,
                                                                 program))
        except Exception as exc:
            raise ModelError(f"torch.export could not load {path.name}: {exc}") from None
    elif suffix in (".pt", ".pth"):
        if not trust:
            raise UntrustedModelError(
                f"{path.name} is a pickle: loading it runs any code inside it. Save the model "
                "with torch.export (.pt2) or ONNX, or pass --trust-model if you made this "
                "file yourself.")
        try:
            module = torch.load(str(path), weights_only=False, map_location="cpu")
        except Exception as exc:
            raise ModelError(f"Could not load {path.name}: {exc}") from None
        if isinstance(module, dict):
            raise InputError(f"{path.name} holds a state_dict, not a model: give "
                             "module:function that builds the model and loads it.")
    else:
        raise InputError(f"{path.name}: unknown model format {suffix!r}. Use .pt2 "
                         "(torch.export), .onnx, a pickled .pt with --trust-model, or "
                         "module:function.")
    if not isinstance(module, torch.nn.Module):
        raise InputError(f"{path.name} does not hold an nn.Module.")
    return TorchClassifier(module, batch_size=batch_size, integer_inputs=integer_inputs,
                           device=_device(device))


def _unflatten(torch, program):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        return torch.export.unflatten(program)


def _device(device: str | None) -> str | None:
    if device == "cuda":
        torch = require("torch", extra="torch", purpose="PyTorch models")
        if not torch.cuda.is_available():
            raise InputError("--device cuda: no CUDA device is available here.")
    return device


def _from_callable(spec: str):
    torch = require("torch", extra="torch", purpose="PyTorch models")
    module_name, _, attr = spec.partition(":")
    try:
        made = getattr(importlib.import_module(module_name), attr)()
    except (ImportError, AttributeError) as exc:
        raise InputError(f"Cannot import model factory {spec!r}: {exc}") from None
    if isinstance(made, TorchClassifier):
        made = made.model
    if not isinstance(made, torch.nn.Module):
        raise InputError(f"{spec} returned {type(made).__name__}, not an nn.Module.")
    return made


def fingerprint(spec: str | Path) -> str:
    path = Path(str(spec))
    if not path.is_file():
        return f"callable:{spec}"
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:16]


def load_arrays(path: Path, *, need_labels: bool = True
                ) -> tuple[np.ndarray, np.ndarray | None]:
    """Inputs and labels from an ``.npz`` file, checked for shape and dtype."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"No data file at {path}.")
    try:
        loaded = np.load(path, allow_pickle=False)
    except Exception as exc:
        raise InputError(f"{path.name} is not a readable .npz file: {exc}") from None
    if not hasattr(loaded, "files"):
        raise InputError(f"{path.name} is a single array; save inputs and labels together "
                         "with numpy.savez(path, x=inputs, y=labels).")
    with loaded as archive:
        x_key = next((k for k in INPUT_KEYS if k in archive.files), None)
        y_key = next((k for k in LABEL_KEYS if k in archive.files), None)
        if x_key is None:
            raise InputError(f"{path.name} has no inputs: expected an array named one of "
                             f"{', '.join(INPUT_KEYS)} (it has {', '.join(archive.files)}).")
        try:
            x = archive[x_key]
            y = archive[y_key] if y_key else None
        except ValueError as exc:  # object arrays need pickle, which is refused
            raise InputError(f"{path.name}: {exc}") from None
    if x.dtype.kind not in "biuf":
        raise InputError(f"{path.name}: inputs must be numbers, not {x.dtype}.")
    if x.ndim < 2 or len(x) == 0:
        raise InputError(f"{path.name}: inputs must be (N, ...) with N > 0, got {x.shape}.")
    if y is None:
        if need_labels:
            raise InputError(f"{path.name} has no labels: expected an array named one of "
                             f"{', '.join(LABEL_KEYS)}.")
        return x, None
    if y.dtype.kind not in "biu" and not (y.dtype.kind == "f" and np.all(y == np.round(y))):
        raise InputError(f"{path.name}: labels must be class indices (integers), "
                         f"not {y.dtype}.")
    if y.ndim != 1 or len(y) != len(x):
        raise InputError(f"{path.name}: need one label per input; inputs {x.shape}, "
                         f"labels {y.shape}.")
    if y.min() < 0:
        raise InputError(f"{path.name}: labels must be class indices 0..K-1.")
    return x, y.astype(np.int64)


def load_mask(path: Path) -> np.ndarray:
    path = Path(path)
    if not path.is_file():
        raise InputError(f"No mask file at {path}.")
    try:
        mask = np.load(path, allow_pickle=False)
    except Exception as exc:
        raise InputError(f"{path.name} is not a readable .npy mask: {exc}") from None
    if getattr(mask, "ndim", 0) != 2:
        raise InputError(f"{path.name}: the region-of-interest mask must be a 2-D (H, W) "
                         "array, True inside the region the model should look at.")
    return mask.astype(bool)
