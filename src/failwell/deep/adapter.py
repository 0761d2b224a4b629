"""PyTorch classifiers behind one small interface: batched, on the best device present
(CUDA when there is one, never required), numpy in and out."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy.special import softmax

from failwell.errors import require


def best_device() -> str:
    torch = require("torch", extra="torch", purpose="PyTorch models")
    return "cuda" if torch.cuda.is_available() else "cpu"


@dataclass
class TorchClassifier:
    """Wraps an ``nn.Module`` returning logits: images (N, C, H, W), tabular tensors (N, F)
    or token ids (N, T; ``integer_inputs=True``)."""

    model: object
    batch_size: int = 256
    device: str | None = None
    integer_inputs: bool = False
    # makes the same network with its named layers, for hooks (a .pt2 runs flattened)
    layered: Callable[[], object] | None = None

    def __post_init__(self):
        self.torch = require("torch", extra="torch", purpose="PyTorch models")
        self.device = self.device or best_device()
        self.model = self.model.to(self.device)
        # a torch.export module refuses eval(); it was exported in eval mode
        with contextlib.suppress(NotImplementedError, RuntimeError):
            self.model.eval()

    def with_layers(self) -> TorchClassifier:
        """This model as one whose named layers can be hooked (Grad-CAM)."""
        if self.layered is None:
            return self
        return TorchClassifier(self.layered(), batch_size=self.batch_size, device=self.device,
                               integer_inputs=self.integer_inputs)

    def tensor(self, x: np.ndarray):
        dtype = self.torch.long if self.integer_inputs else self.torch.float32
        return self.torch.as_tensor(np.asarray(x), dtype=dtype, device=self.device)

    def logits(self, x: np.ndarray) -> np.ndarray:
        out = []
        with self.torch.no_grad():
            for start in range(0, len(x), self.batch_size):
                out.append(self.model(self.tensor(x[start:start + self.batch_size])).float()
                           .cpu().numpy())
        return np.concatenate(out) if out else np.empty((0, 0), dtype=np.float32)

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        return softmax(self.logits(x), axis=1)

    def predict(self, x: np.ndarray) -> np.ndarray:
        return self.logits(x).argmax(axis=1)


class OnnxClassifier:
    """An ONNX image (or tensor) classifier with the same numpy interface, run by
    onnxruntime on the best provider present. Not differentiable: it serves the black-box
    attack, corruption tables, drift and latency checks, not attributions or PGD."""

    def __init__(self, model: str | bytes, *, batch_size: int = 256):
        from pathlib import Path

        ort = require("onnxruntime", extra="onnx", purpose="ONNX models")
        source = model if isinstance(model, bytes) else str(Path(model))
        providers = [p for p in ("CUDAExecutionProvider", "CPUExecutionProvider")
                     if p in ort.get_available_providers()]
        try:
            self.session = ort.InferenceSession(source, providers=providers)
        except Exception as exc:  # onnxruntime raises its own types
            from failwell.errors import ModelError

            raise ModelError(f"cannot load the ONNX model: {exc}") from None
        self.input = self.session.get_inputs()[0].name
        self.batch_size = batch_size
        self.source = None if isinstance(model, bytes) else source  # for cold-start timing
        self.integer_inputs = False

    def logits(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=np.float32)
        out = [self.session.run(None, {self.input: x[s:s + self.batch_size]})[0]
               for s in range(0, len(x), self.batch_size)]
        return np.concatenate(out)

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        return softmax(self.logits(x), axis=1)

    def predict(self, x: np.ndarray) -> np.ndarray:
        return self.logits(x).argmax(axis=1)
