"""Sending the model to Dask workers in a safe format, never as a pickle of arbitrary code.

A scikit-learn estimator travels as skops bytes (the workers trust exactly the types the
client's own object holds), an ONNX model as its file's bytes, and a Python function as its
``module:function`` name, which each worker imports. Each worker process loads a model once.
"""

from __future__ import annotations

import hashlib
import importlib
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from failwell.errors import InputError
from failwell.scanner.models import CallableModel, ModelAdapter, OnnxModel, SklearnModel


@dataclass(frozen=True)
class ModelShipment:
    kind: str  # "skops", "onnx" or "callable"
    payload: bytes | str
    trusted: tuple[str, ...]
    name: str
    fingerprint: str
    positive_label: Any
    probabilistic: bool

    def load(self) -> ModelAdapter:
        return _load(self)


def ship(adapter: ModelAdapter) -> ModelShipment:
    """Pack an adapter for the workers, or say how to make it shippable."""
    common = {"name": adapter.name, "fingerprint": adapter.fingerprint,
              "positive_label": adapter.positive_label,
              "probabilistic": adapter.probabilistic}
    if isinstance(adapter, SklearnModel):
        import skops.io as sio

        try:
            data = sio.dumps(adapter.estimator)
            trusted = tuple(sio.get_untrusted_types(data=data))
        except Exception as exc:
            raise InputError(f"The model {adapter.name} cannot be saved with skops for the "
                             f"Dask workers ({exc}); give an .onnx file or a module:function "
                             "instead.") from exc
        return ModelShipment("skops", data, trusted, **common)
    if isinstance(adapter, OnnxModel):
        return ModelShipment("onnx", adapter.path.read_bytes(), (), **common)
    if isinstance(adapter, CallableModel):
        fn = adapter.fn
        spec = f"{getattr(fn, '__module__', '')}:{getattr(fn, '__qualname__', '')}"
        try:
            found = _import(spec)
        except Exception:
            found = None
        if found is not fn or fn.__module__ == "__main__":
            raise InputError(f"The model function {adapter.name} cannot be imported by name "
                             "on the Dask workers; define it in an importable module and "
                             "give --model module:function.")
        return ModelShipment("callable", spec, (), **common)
    raise InputError(f"failwell cannot send a {type(adapter).__name__} to Dask workers; use "
                     "a scikit-learn estimator, an .onnx file or a module:function.")


def _import(spec: str) -> Any:
    module, _, attr = spec.partition(":")
    obj: Any = importlib.import_module(module)
    for part in attr.split("."):
        obj = getattr(obj, part)
    return obj


@lru_cache(maxsize=4)
def _load(shipment: ModelShipment) -> ModelAdapter:
    if shipment.kind == "skops":
        import skops.io as sio

        estimator = sio.loads(shipment.payload, trusted=list(shipment.trusted) or None)
        adapter: ModelAdapter = SklearnModel(estimator, name=shipment.name,
                                             fingerprint=shipment.fingerprint)
        adapter.bind(shipment.positive_label)
    elif shipment.kind == "onnx":
        import tempfile
        from pathlib import Path

        digest = hashlib.sha256(shipment.payload).hexdigest()[:16]
        path = Path(tempfile.gettempdir()) / f"failwell-{digest}-{shipment.name}"
        if not path.exists():
            path.write_bytes(shipment.payload)
        adapter = OnnxModel(path)
    else:
        adapter = CallableModel(_import(str(shipment.payload)),
                                probabilistic=shipment.probabilistic)
    adapter.positive_label = shipment.positive_label
    return adapter
