"""Model adapters: anything that turns a feature frame into P(positive) or 0/1 decisions.

Duck-typed like scikit-learn: an adapter has ``predict(frame) -> 1-D array`` and says whether
its output is a probability. Loading never unpickles a file unless the user said it is trusted.
"""

from __future__ import annotations

import hashlib
import importlib
import pickle
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from failwell.errors import InputError, ModelError, UntrustedModelError, require

PICKLE_SUFFIXES = {".pkl", ".pickle", ".joblib"}


@dataclass
class ModelAdapter:
    """Base adapter: subclasses implement :meth:`raw_predict`."""

    name: str
    fingerprint: str
    input_columns: list[str] | None = None  # None: use the dataset's feature columns
    positive_label: Any = 1

    probabilistic: bool = True

    def raw_predict(self, frame: pd.DataFrame) -> np.ndarray:
        raise NotImplementedError

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        """P(positive) if ``probabilistic`` else 0/1 decisions, as a 1-D float array."""
        out = np.asarray(self.raw_predict(frame))
        if out.ndim == 2 and out.shape[1] == 2:
            out = out[:, 1]
        if out.ndim != 1 or len(out) != len(frame):
            raise ModelError(
                f"{self.name} returned shape {out.shape} for {len(frame)} rows; expected one "
                "score or label per row (or two probability columns)."
            )
        return out.astype(float)


class SklearnModel(ModelAdapter):
    """A scikit-learn-compatible estimator (pipelines included)."""

    def __init__(self, estimator: Any, *, name: str | None = None, fingerprint: str = ""):
        cols = getattr(estimator, "feature_names_in_", None)
        super().__init__(
            name=name or type(estimator).__name__,
            fingerprint=fingerprint or _digest(_safe_pickle(estimator)),
            input_columns=None if cols is None else [str(c) for c in cols],
        )
        self.estimator = estimator
        self.probabilistic = hasattr(estimator, "predict_proba")

    def bind(self, positive_label: Any) -> None:
        self.positive_label = positive_label

    def raw_predict(self, frame: pd.DataFrame) -> np.ndarray:
        if self.probabilistic:
            proba = self.estimator.predict_proba(frame)
            classes = list(self.estimator.classes_)
            if self.positive_label not in classes:
                raise ModelError(
                    f"{self.name} knows classes {classes}, not the positive label "
                    f"{self.positive_label!r}."
                )
            return proba[:, classes.index(self.positive_label)]
        return (self.estimator.predict(frame) == self.positive_label).astype(float)


class CallableModel(ModelAdapter):
    """Any Python function ``frame -> scores or labels``; probabilities when all in (0, 1)."""

    def __init__(self, fn: Callable[[pd.DataFrame], Any], *, probabilistic: bool = True):
        name = getattr(fn, "__qualname__", repr(fn))
        super().__init__(name=name, fingerprint=_digest(f"{fn.__module__}:{name}".encode()))
        self.fn = fn
        self.probabilistic = probabilistic

    def raw_predict(self, frame: pd.DataFrame) -> np.ndarray:
        return np.asarray(self.fn(frame))


class OnnxModel(ModelAdapter):
    """An ONNX classifier (e.g. converted with skl2onnx) run by onnxruntime."""

    def __init__(self, path: Path):
        ort = require("onnxruntime", extra="onnx", purpose="Scanning an ONNX model")
        try:
            self.session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        except Exception as exc:
            raise ModelError(f"onnxruntime could not load {path}: {exc}") from exc
        self.inputs = self.session.get_inputs()
        self.path = path
        names = [i.name for i in self.inputs]
        super().__init__(
            name=path.name,
            fingerprint=_file_digest(path),
            input_columns=None if len(names) == 1 else names,
        )

    def raw_predict(self, frame: pd.DataFrame) -> np.ndarray:
        if len(self.inputs) == 1:
            feeds = {self.inputs[0].name: frame.to_numpy(dtype=np.float32)}
        else:
            feeds = {i.name: _onnx_column(frame[i.name], i.type) for i in self.inputs}
        outputs = self.session.run(None, feeds)
        probs = next((o for o in outputs[1:]), None)
        if probs is None:
            return (np.asarray(outputs[0]) == self.positive_label).astype(float)
        if isinstance(probs, list):  # skl2onnx ZipMap: one {label: prob} dict per row
            key = self.positive_label if self.positive_label in probs[0] else 1
            return np.array([p[key] for p in probs])
        return np.asarray(probs)[:, -1]


def _onnx_column(col: pd.Series, onnx_type: str) -> np.ndarray:
    if "string" in onnx_type:
        return col.astype(str).to_numpy(dtype=object).reshape(-1, 1)
    if "int64" in onnx_type:
        return col.to_numpy(dtype=np.int64).reshape(-1, 1)
    return col.to_numpy(dtype=np.float32).reshape(-1, 1)


def load_model(spec: str | Path, *, trust: bool = False) -> ModelAdapter:
    """Load a model from ``.skops``, ``.onnx``, a pickle (only with ``trust``) or ``module:fn``."""
    text = str(spec)
    path = Path(text)
    if not path.exists() and ":" in text and not text.endswith(tuple(PICKLE_SUFFIXES)):
        return _load_callable(text)
    if not path.is_file():
        raise InputError(f"No model file at {path}.")
    suffix = path.suffix.lower()
    if suffix == ".skops":
        estimator = _load_skops(path, trust)
        return SklearnModel(estimator, name=path.name, fingerprint=_file_digest(path))
    if suffix == ".onnx":
        return OnnxModel(path)
    if suffix in PICKLE_SUFFIXES:
        if not trust:
            raise UntrustedModelError(
                f"{path.name} is a pickle: loading it runs any code inside it. Convert it to "
                ".skops or .onnx, or pass --trust-model if you made this file yourself."
            )
        import joblib

        try:
            estimator = joblib.load(path)
        except Exception as exc:
            raise ModelError(f"Could not unpickle {path.name}: {exc}") from exc
        return SklearnModel(estimator, name=path.name, fingerprint=_file_digest(path))
    raise InputError(
        f"{path.name}: unknown model format {suffix!r}. Use .skops, .onnx, a pickle with "
        "--trust-model, or module:function for a Python callable."
    )


def _load_skops(path: Path, trust: bool) -> Any:
    import skops.io as sio

    try:
        untrusted = sio.get_untrusted_types(file=path)
        if untrusted and not trust:
            raise UntrustedModelError(
                f"{path.name} contains types skops does not trust by default: "
                f"{', '.join(untrusted)}. Pass --trust-model if you made this file yourself."
            )
        return sio.load(path, trusted=untrusted or None)
    except UntrustedModelError:
        raise
    except Exception as exc:
        raise ModelError(f"Could not load {path.name} with skops: {exc}") from exc


def _load_callable(spec: str) -> CallableModel:
    module_name, _, attr = spec.partition(":")
    try:
        fn = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as exc:
        raise InputError(f"Cannot import model callable {spec!r}: {exc}") from exc
    return CallableModel(fn)


def as_model(model: Any) -> ModelAdapter | None:
    """Accept an adapter, an estimator, a callable or a path, as the Python API allows."""
    if model is None or isinstance(model, ModelAdapter):
        return model
    if hasattr(model, "predict"):
        return SklearnModel(model)
    if callable(model):
        return CallableModel(model)
    return load_model(model)


def _safe_pickle(obj: Any) -> bytes:
    try:
        return pickle.dumps(obj)
    except Exception:
        return repr(obj).encode()


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _file_digest(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return "sha256:" + h.hexdigest()
