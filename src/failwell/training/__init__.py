"""Training health monitor (``failwell[torch]``): anomalies in norms and losses, silent data
corruption checks (a replay on another executor, bit-exact cross-replica hashes, signed and
canary-checked checkpoints), fault injection for drills (a corrupted kernel), a run record,
and callbacks for Lightning, the Hugging Face Trainer and MLflow."""

from failwell.training.monitor import Alert, TrainingMonitor

__all__ = ["Alert", "TrainingMonitor"]
