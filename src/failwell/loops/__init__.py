"""Feedback loops in recommenders: audit real logs, simulate retraining on one's own logs,
and evaluate a new policy off-policy before it runs (issue 20).

``audit`` (``audit.py``), ``simulate`` (``simulate.py``) and the off-policy estimators
(``ope.py``) are plain functions over arrays and frames; the CLI (``failwell loop``) and the
reports sit on top of them.
"""
