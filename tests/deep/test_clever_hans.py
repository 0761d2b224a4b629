"""Clever Hans on scikit-learn's digits: a CNN trained where a corner marker goes with the
label is flagged, with the marker located; the same CNN trained without it is not."""

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("captum")

from failwell.deep.clever_hans import attach_gallery, clever_hans, gallery  # noqa: E402
from failwell.deep.digits import digits_with_marker, split, train  # noqa: E402


@pytest.fixture(scope="module")
def data():
    return split(*digits_with_marker())


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
