"""Clever Hans on scikit-learn's digits: a CNN trained where a corner marker goes with the
label is flagged, with the marker located; the same CNN trained without it is not."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("captum")

from failwell.vision.clever_hans import attach_gallery, clever_hans, gallery  # noqa: E402

MARKER = (slice(0, 3), slice(0, 3))  # rows 0-2, columns 0-2 of a 24 x 24 image


def digits_with_marker(seed: int = 0, marker: bool = True):
    """Digits upscaled to 16 x 16 on a 24 x 24 canvas; the marker goes on 95 % of the
    images of digits 5-9 and 5 % of digits 0-4 (like the portable X-ray marker)."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = np.kron(digits.images / 16.0, np.ones((2, 2)))
    canvas = np.zeros((len(images), 1, 24, 24), dtype=np.float32)
    canvas[:, 0, 4:20, 4:20] = images
    rng = np.random.default_rng(seed)
    if marker:
        marked = rng.random(len(canvas)) < np.where(digits.target >= 5, 0.95, 0.05)
        canvas[marked, 0, MARKER[0], MARKER[1]] = 1.0
    return canvas, digits.target


def cnn(seed: int = 0):
    torch.manual_seed(seed)
    return torch.nn.Sequential(
        torch.nn.Conv2d(1, 8, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
        torch.nn.Conv2d(8, 16, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
        torch.nn.Flatten(), torch.nn.Linear(16 * 6 * 6, 10))


def train(images, labels, epochs: int = 25, seed: int = 0):
    model = cnn(seed)
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    x, y = torch.as_tensor(images), torch.as_tensor(labels)
    generator = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        for idx in torch.randperm(len(x), generator=generator).split(64):
            optimizer.zero_grad()
            torch.nn.functional.cross_entropy(model(x[idx]), y[idx]).backward()
            optimizer.step()
    return model.eval()


@pytest.fixture(scope="module")
def data():
    images, labels = digits_with_marker()
    return images[:1400], labels[:1400], images[1400:], labels[1400:]


def test_marker_model_is_flagged_and_the_marker_located(data):
    train_x, train_y, test_x, test_y = data
    model = train(train_x, train_y)
    result = clever_hans(model, test_x, test_y, layer=model[3])
    assert result.findings, result.diagnostics
    finding = result.findings[0]
    assert finding.failure_mode == "spurious-correlation"
    y0, x0, y1, x1 = finding.evidence["window"]
    assert y0 < 3 and x0 < 3 and y1 > 0 and x1 > 0  # overlaps the planted marker
    assert finding.metric("marker_accuracy_drop").value >= 0.1
    assert "gradcam_outside_share" in result.metrics
    pngs = gallery(model, test_x, result)
    assert pngs and pngs[0]["png"].startswith(b"\x89PNG")
    from failwell.report import render

    html = render(attach_gallery(model, test_x, result), "html", title="clever hans")
    assert html.count("data:image/png;base64,") == len(pngs)
    assert "relies on a marker" in html


def test_the_same_cnn_without_the_marker_is_not_flagged(data):
    clean_x, clean_y = digits_with_marker(marker=False)
    model = train(clean_x[:1400], clean_y[:1400])
    _, _, test_x, test_y = data  # scanned on marked images: it must ignore the marker
    result = clever_hans(model, test_x, test_y)
    assert result.findings == []
    assert result.metrics["accuracy"] > 0.85
