"""The scanner: subject -> detectors -> findings."""

from failwell.scan.compare import compare
from failwell.scan.context import ScanConfig, SkipDetector
from failwell.scan.models import CallableModel, ModelAdapter, OnnxModel, SklearnModel, load_model
from failwell.scan.registry import available_detectors
from failwell.scan.runner import scan
from failwell.scan.subject import Dataset, make_dataset, read_table

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
