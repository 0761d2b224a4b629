"""Checkpoints accepted only after they check out: a manifest beside the file records its
SHA-256 and the canary loss at save time; loading verifies both before the weights are used."""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path

import torch

from failwell.errors import InputError


class CheckpointError(InputError):
    """A checkpoint failed validation; it was not loaded."""


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def save_checkpoint(path: str | Path, model: torch.nn.Module, *, optimizer=None,
                    canary_loss: float | None = None, step: int | None = None) -> Path:
    path = Path(path)
    state = {"model": model.state_dict(), "step": step}
    if optimizer is not None:
        state["optimizer"] = optimizer.state_dict()
    torch.save(state, path)
    manifest = {"sha256": _sha256(path), "canary_loss": canary_loss, "step": step}
    path.with_name(path.name + ".manifest.json").write_text(json.dumps(manifest, indent=2))
    return path


def load_checkpoint(path: str | Path, model: torch.nn.Module, *, optimizer=None,
                    canary_loss_fn=None, tolerance: float = 1e-4) -> dict:
    """Verify the content hash, load into a copy, check the canary loss, then load into
    ``model`` (and ``optimizer``). Anything wrong raises :class:`CheckpointError` and leaves
    ``model`` untouched."""
    import copy

    path = Path(path)
    manifest_path = path.with_name(path.name + ".manifest.json")
    if not path.is_file():
        raise CheckpointError(f"No such checkpoint: {path}")
    if not manifest_path.is_file():
        raise CheckpointError(f"{path}: no manifest ({manifest_path.name}); a checkpoint "
                              "without its hash cannot be validated.")
    manifest = json.loads(manifest_path.read_text())
    actual = _sha256(path)
    if actual != manifest["sha256"]:
        raise CheckpointError(f"{path} failed its content hash (expected "
                              f"{manifest['sha256'][:16]}..., got {actual[:16]}...): the file "
                              "changed after it was written. Refusing to load it.")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # a torch or pickle error: report it as ours
        raise CheckpointError(f"{path} cannot be read as a checkpoint: {exc}") from None
    trial = copy.deepcopy(model)
    trial.load_state_dict(state["model"])
    expected = manifest.get("canary_loss")
    if canary_loss_fn is not None and expected is not None:
        got = canary_loss_fn(trial)
        if not math.isfinite(got) or not math.isclose(got, expected, rel_tol=tolerance):
            raise CheckpointError(f"{path}: canary loss {got:.6g} does not match the "
                                  f"{expected:.6g} recorded at save time. Refusing to load it.")
    model.load_state_dict(state["model"])
    if optimizer is not None and "optimizer" in state:
        optimizer.load_state_dict(state["optimizer"])
    return manifest
