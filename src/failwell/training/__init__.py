"""Training health monitor (``failwell[torch]``): anomalies in norms and losses, silent data
corruption checks (deterministic replay, cross-replica checksums, checkpoint validation),
fault injection for drills, and a run record."""

from failwell.training.monitor import Alert, TrainingMonitor

__all__ = ["Alert", "TrainingMonitor"]
