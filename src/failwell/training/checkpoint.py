"""Checkpoints accepted only after they check out. A manifest beside the file records its
SHA-256 and the canary loss at save time, signed with HMAC-SHA256; loading verifies the
signature, the hash and the canary loss before the weights are used.

Why each part: the hash catches a file that changed on disk; the signature catches a manifest
rewritten along with it (someone who can replace the weights can recompute a bare hash); the
canary catches weights that were already wrong when saved (the file and its hash then agree).

The key comes from ``FAILWELL_CHECKPOINT_KEY``, or ``key=`` (an empty key is no key).
Without one, saving writes an unsigned manifest and warns (:class:`UnsignedCheckpointWarning`);
loading refuses an unsigned manifest, or a signed one it has no key to verify, unless
``allow_unsigned=True``. Loading also refuses to skip the canary check (no record in the
manifest, or no ``canary_loss_fn``) unless ``allow_no_canary=True``: every skipped check is
the caller's explicit choice.
"""

from __future__ import annotations

import copy
import hashlib
import hmac
import json
import math
import os
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from failwell.errors import InputError

KEY_ENV = "FAILWELL_CHECKPOINT_KEY"
FORMAT = 2  # 2: signed manifests; 1 (no "format" field) was hash and canary only


class CheckpointError(InputError):
    """A checkpoint failed validation; it was not loaded."""


class UnsignedCheckpointWarning(UserWarning):
    """A checkpoint was saved without a signing key: loading it will need
    ``allow_unsigned=True``."""


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _key(key: str | bytes | None) -> bytes | None:
    """The explicit key, else the environment's; an empty value counts as none."""
    if key is None:
        key = os.environ.get(KEY_ENV) or None
    if isinstance(key, str):
        key = key.encode()
    return key or None


def _signature(manifest: dict[str, Any], key: bytes) -> str:
    """HMAC-SHA256 over the canonical JSON of every field but the signature itself."""
    body = {k: v for k, v in manifest.items() if k != "signature"}
    payload = json.dumps(body, sort_keys=True, separators=(",", ":"), allow_nan=False)
    return hmac.new(key, payload.encode(), hashlib.sha256).hexdigest()


def manifest_path(path: str | Path) -> Path:
    path = Path(path)
    return path.with_name(path.name + ".manifest.json")


def save_checkpoint(path: str | Path, model: torch.nn.Module, *, optimizer=None,
                    canary_loss: float | None = None, step: int | None = None,
                    key: str | bytes | None = None) -> Path:
    """Write the state and its manifest, signed with ``key`` or ``$FAILWELL_CHECKPOINT_KEY``
    (unsigned, with a warning, when there is neither). A non-finite ``canary_loss`` is
    refused: the model is already broken, and such a checkpoint could never be accepted."""
    path = Path(path)
    if canary_loss is not None:
        canary_loss = float(canary_loss)
        if not math.isfinite(canary_loss):
            raise CheckpointError(f"{path}: the canary loss is {canary_loss}; not writing a "
                                  "checkpoint of a model that is already broken.")
    state = {"model": model.state_dict(), "step": step}
    if optimizer is not None:
        state["optimizer"] = optimizer.state_dict()
    torch.save(state, path)
    manifest: dict[str, Any] = {"format": FORMAT, "sha256": _sha256(path),
                                "canary_loss": canary_loss, "step": step}
    secret = _key(key)
    if secret is None:
        warnings.warn(f"{path.name}: no signing key (set {KEY_ENV}); the manifest is unsigned "
                      "and loading it will need allow_unsigned=True.",
                      UnsignedCheckpointWarning, stacklevel=2)
        manifest["signature"] = None
    else:
        manifest["signature"] = _signature(manifest, secret)
    manifest_path(path).write_text(json.dumps(manifest, indent=2, allow_nan=False))
    return path


def _verify_signature(path: Path, manifest: dict[str, Any], key: str | bytes | None,
                      allow_unsigned: bool) -> None:
    signature = manifest.get("signature")
    secret = _key(key)
    if not signature:
        if allow_unsigned:
            return
        raise CheckpointError(f"{path}: the manifest is not signed, so an edited manifest "
                              "cannot be told from a genuine one. Save with "
                              f"{KEY_ENV} set, or pass allow_unsigned=True to accept it.")
    if secret is None:
        if allow_unsigned:
            return
        raise CheckpointError(f"{path}: the manifest is signed but there is no key to verify "
                              f"it: set {KEY_ENV}, or pass allow_unsigned=True to accept it "
                              "unverified.")
    try:
        expected = _signature(manifest, secret)
    except ValueError:  # a NaN or infinity edited into the manifest
        expected = ""
    if not isinstance(signature, str) or not hmac.compare_digest(expected.encode(),
                                                                 signature.encode()):
        raise CheckpointError(f"{path}: the manifest's signature does not match (edited "
                              "after it was written, or signed with another key). Refusing "
                              "to load it.")


def load_checkpoint(path: str | Path, model: torch.nn.Module, *, optimizer=None,
                    canary_loss_fn: Callable[[torch.nn.Module], float] | None = None,
                    tolerance: float = 1e-4, key: str | bytes | None = None,
                    allow_unsigned: bool = False, allow_no_canary: bool = False
                    ) -> dict[str, Any]:
    """Verify the manifest's signature, the content hash, load into a copy, check the canary
    loss, then load into ``model`` (and ``optimizer``); returns the manifest. Anything wrong
    raises :class:`CheckpointError` and leaves ``model`` untouched.

    ``allow_unsigned``: accept a manifest without a signature, or one there is no key to
    verify. ``allow_no_canary``: accept without the canary check, when the manifest has no
    canary record or no ``canary_loss_fn`` is given."""
    path = Path(path)
    mpath = manifest_path(path)
    if not path.is_file():
        raise CheckpointError(f"No such checkpoint: {path}")
    if not mpath.is_file():
        raise CheckpointError(f"{path}: no manifest ({mpath.name}); a checkpoint "
                              "without its hash cannot be validated.")
    try:
        manifest = json.loads(mpath.read_text())
    except (ValueError, UnicodeDecodeError) as exc:
        raise CheckpointError(f"{mpath} is not a readable manifest: {exc}") from None
    if not isinstance(manifest, dict) or not isinstance(manifest.get("sha256"), str):
        raise CheckpointError(f"{mpath} is not a checkpoint manifest (no sha256).")
    _verify_signature(path, manifest, key, allow_unsigned)
    expected = manifest.get("canary_loss")
    if expected is None and not allow_no_canary:
        raise CheckpointError(f"{path}: the manifest has no canary loss, so the weights cannot "
                              "be checked. Pass allow_no_canary=True to accept it without.")
    if expected is not None and canary_loss_fn is None and not allow_no_canary:
        raise CheckpointError(f"{path}: no canary_loss_fn given to check the recorded canary "
                              f"loss {expected}. Pass one, or allow_no_canary=True to skip "
                              "the check.")
    actual = _sha256(path)
    if not hmac.compare_digest(actual.encode(), manifest["sha256"].encode()):
        raise CheckpointError(f"{path} failed its content hash (expected "
                              f"{manifest['sha256'][:16]}..., got {actual[:16]}...): the file "
                              "changed after it was written. Refusing to load it.")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # a torch or pickle error: report it as ours
        raise CheckpointError(f"{path} cannot be read as a checkpoint: {exc}") from None
    trial = copy.deepcopy(model)
    trial.load_state_dict(state["model"])
    if expected is not None and canary_loss_fn is not None:
        got = float(canary_loss_fn(trial))
        if not isinstance(expected, int | float) or not math.isfinite(got) or \
                not math.isclose(got, expected, rel_tol=tolerance):
            raise CheckpointError(f"{path}: canary loss {got:.6g} does not match the "
                                  f"{expected!r} recorded at save time. Refusing to load it.")
    model.load_state_dict(state["model"])
    if optimizer is not None and "optimizer" in state:
        optimizer.load_state_dict(state["optimizer"])
    return manifest
