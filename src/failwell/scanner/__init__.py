"""The scanner: subject -> detectors -> findings."""

from failwell.scanner.compare import compare
from failwell.scanner.context import ScanConfig, SkipDetector
from failwell.scanner.models import CallableModel, ModelAdapter, OnnxModel, SklearnModel, load_model
from failwell.scanner.registry import available_detectors
from failwell.scanner.runner import scan
from failwell.scanner.subject import Dataset, make_dataset, read_table

__all__ = [
    "CallableModel",
    "Dataset",
    "ModelAdapter",
    "OnnxModel",
    "ScanConfig",
    "SkipDetector",
    "SklearnModel",
    "available_detectors",
    "compare",
    "load_model",
    "make_dataset",
    "read_table",
    "scan",
]
