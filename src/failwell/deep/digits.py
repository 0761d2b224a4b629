"""The deep-learning demo's data and model: scikit-learn's bundled digits on a 24 x 24
canvas, with an optional corner marker that goes with the label (as the "portable" X-ray
marker went with pneumonia), and a small CNN trained on them in seconds on a CPU.

Used by ``failwell demo --digits``, the tests and the benchmarks, so all three scan the
same model.
"""

from __future__ import annotations

import numpy as np

from failwell.errors import require
from failwell.progress import Count

MARKER = (slice(0, 3), slice(0, 3))  # rows 0-2, columns 0-2
TRAIN_ROWS = 1400  # the rest (397 images) is the test split


def digits_with_marker(seed: int = 0, marker: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Digits upscaled to 16 x 16 on a 24 x 24 canvas, (N, 1, 24, 24) in [0, 1]. With
    ``marker``, a 3 x 3 white square sits in the top-left corner of 95 % of the images of
    digits 5-9 and 5 % of digits 0-4."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = np.kron(digits.images / 16.0, np.ones((2, 2)))
    canvas = np.zeros((len(images), 1, 24, 24), dtype=np.float32)
    canvas[:, 0, 4:20, 4:20] = images
    if marker:
        rng = np.random.default_rng(seed)
        marked = rng.random(len(canvas)) < np.where(digits.target >= 5, 0.95, 0.05)
        canvas[marked, 0, MARKER[0], MARKER[1]] = 1.0
    return canvas, digits.target.astype(np.int64)


def split(images: np.ndarray, labels: np.ndarray):
    """(train_x, train_y, test_x, test_y): the first 1,400 images train."""
    return images[:TRAIN_ROWS], labels[:TRAIN_ROWS], images[TRAIN_ROWS:], labels[TRAIN_ROWS:]


def cnn(seed: int = 0):
    """Two conv blocks and a linear head; ``model[3]`` is the last conv layer (Grad-CAM)."""
    torch = require("torch", extra="torch", purpose="The digits demo")
    torch.manual_seed(seed)
    nn = torch.nn
    return nn.Sequential(
        nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(16 * 6 * 6, 10))


def train(images: np.ndarray, labels: np.ndarray, *, epochs: int = 25, seed: int = 0,
          augment=None, model=None, progress: Count | None = None):
    """Adam, batches of 64. ``augment(batch, rng)`` transforms each numpy batch first
    (e.g. :func:`failwell.deep.shift.randomize` for domain randomization); ``progress(epoch,
    epochs)`` hears after each epoch."""
    torch = require("torch", extra="torch", purpose="The digits demo")
    model = model if model is not None else cnn(seed)
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    x, y = torch.as_tensor(images), torch.as_tensor(labels)
    generator = torch.Generator().manual_seed(seed)
    rng = np.random.default_rng(seed)
    model.train()
    for epoch in range(epochs):
        for idx in torch.randperm(len(x), generator=generator).split(64):
            batch = x[idx]
            if augment is not None:
                batch = torch.as_tensor(augment(batch.numpy(), rng))
            optimizer.zero_grad()
            torch.nn.functional.cross_entropy(model(batch), y[idx]).backward()
            optimizer.step()
        if progress:
            progress(epoch + 1, epochs)
    return model.eval()
