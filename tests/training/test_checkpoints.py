"""Validated checkpoints: every path that refuses a checkpoint refuses it (and leaves the model
untouched), and every check that is skipped is skipped only when the caller said so."""

from __future__ import annotations

import hashlib
import json

import pytest

torch = pytest.importorskip("torch")

from failwell.training import faults  # noqa: E402
from failwell.training.checkpoint import (  # noqa: E402
    KEY_ENV,
    CheckpointError,
    UnsignedCheckpointWarning,
    load_checkpoint,
    manifest_path,
    save_checkpoint,
)

KEY = "test-key-not-a-secret"


def net(seed: int) -> torch.nn.Module:
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.ReLU(), torch.nn.Linear(16, 3))


X = torch.randn(32, 8, generator=torch.Generator().manual_seed(7))
Y = torch.arange(32) % 3


def canary(model: torch.nn.Module) -> float:
    with torch.no_grad():
        return float(torch.nn.functional.cross_entropy(model(X), Y))


def same(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    return all(torch.equal(x, y) for x, y in zip(a.state_dict().values(),
                                                  b.state_dict().values(), strict=True))


@pytest.fixture
def key(monkeypatch):
    monkeypatch.setenv(KEY_ENV, KEY)


@pytest.fixture
def no_key(monkeypatch):
    monkeypatch.delenv(KEY_ENV, raising=False)


def refused(path, match: str, **options) -> None:
    """Loading ``path`` raises ``match`` and the target model keeps its own weights."""
    target, witness = net(99), net(99)
    with pytest.raises(CheckpointError, match=match):
        load_checkpoint(path, target, **options)
    assert same(target, witness)


def edit(path, **fields) -> None:
    mpath = manifest_path(path)
    manifest = json.loads(mpath.read_text())
    manifest.update(fields)
    mpath.write_text(json.dumps(manifest))


def test_a_signed_checkpoint_round_trips(tmp_path, key):
    model = net(1)
    path = save_checkpoint(tmp_path / "c.pt", model, canary_loss=canary(model), step=40)
    manifest = json.loads(manifest_path(path).read_text())
    assert len(manifest["signature"]) == 64 and manifest["format"] == 2
    fresh = net(2)
    assert load_checkpoint(path, fresh, canary_loss_fn=canary)["step"] == 40
    assert same(fresh, model)


@pytest.mark.parametrize("field", ["canary_loss", "step"])
def test_an_edited_manifest_is_refused(tmp_path, key, field):
    model = net(1)
    path = save_checkpoint(tmp_path / "c.pt", model, canary_loss=canary(model), step=40)
    edit(path, **{field: json.loads(manifest_path(path).read_text())[field] + 1})
    refused(path, "signature does not match", canary_loss_fn=canary)


def test_weights_replaced_with_their_hash_and_canary_rewritten_are_refused(tmp_path, key):
    """What a bare hash cannot stop: other weights written, and the manifest's hash and canary
    updated to match them. Only the signature catches it (without it, they load)."""
    model, other = net(1), net(5)
    path = save_checkpoint(tmp_path / "c.pt", model, canary_loss=canary(model), step=40)
    torch.save({"model": other.state_dict(), "step": 40}, path)
    edit(path, sha256=hashlib.sha256(path.read_bytes()).hexdigest(),
         canary_loss=canary(other))
    refused(path, "signature does not match", canary_loss_fn=canary)
    fooled = net(2)
    load_checkpoint(path, fooled, canary_loss_fn=canary, allow_unsigned=True, key=b"")
    assert same(fooled, other)  # the control: hash and canary alone accept the swap


def test_a_signature_from_another_key_or_no_key_to_verify_is_refused(tmp_path, key,
                                                                     monkeypatch):
    model = net(1)
    path = save_checkpoint(tmp_path / "c.pt", model, canary_loss=canary(model))
    refused(path, "signature does not match", canary_loss_fn=canary, key="another key")
    monkeypatch.delenv(KEY_ENV)
    refused(path, "no key to verify", canary_loss_fn=canary)
    load_checkpoint(path, net(2), canary_loss_fn=canary, allow_unsigned=True)  # said so


def test_a_stripped_signature_is_refused(tmp_path, key):
    model = net(1)
    path = save_checkpoint(tmp_path / "c.pt", model, canary_loss=canary(model))
    edit(path, signature=None)
    refused(path, "not signed", canary_loss_fn=canary)


def test_without_a_key_saving_warns_and_loading_needs_allow_unsigned(tmp_path, no_key):
    model = net(1)
    with pytest.warns(UnsignedCheckpointWarning, match=KEY_ENV):
        path = save_checkpoint(tmp_path / "c.pt", model, canary_loss=canary(model))
    assert json.loads(manifest_path(path).read_text())["signature"] is None
    refused(path, "not signed", canary_loss_fn=canary)
    fresh = net(2)
    load_checkpoint(path, fresh, canary_loss_fn=canary, allow_unsigned=True)
    assert same(fresh, model)
    # allow_unsigned skips the signature only: the hash and the canary are still checked
    edit(path, canary_loss=canary(model) * 1.5)
    refused(path, "canary loss", canary_loss_fn=canary, allow_unsigned=True)


def test_the_canary_check_is_skipped_only_when_asked(tmp_path, key):
    model = net(1)
    path = save_checkpoint(tmp_path / "c.pt", model, canary_loss=canary(model))
    refused(path, "no canary_loss_fn")
    load_checkpoint(path, net(2), allow_no_canary=True)
    bare = save_checkpoint(tmp_path / "bare.pt", model)  # no canary recorded
    refused(bare, "no canary loss", canary_loss_fn=canary)
    fresh = net(2)
    load_checkpoint(bare, fresh, canary_loss_fn=canary, allow_no_canary=True)
    assert same(fresh, model)


def test_weights_corrupted_before_saving_fail_the_canary(tmp_path, key):
    model = net(1)
    recorded = canary(model)
    faults.flip_weight(model, index=0, bit=29)  # after the canary was taken, before saving
    path = save_checkpoint(tmp_path / "c.pt", model, canary_loss=recorded)
    refused(path, "canary loss", canary_loss_fn=canary)
    # the control: the same weights with their own canary load
    path = save_checkpoint(tmp_path / "ok.pt", model, canary_loss=canary(model))
    load_checkpoint(path, net(2), canary_loss_fn=canary)


def test_a_flipped_bit_on_disk_fails_the_hash(tmp_path, key):
    model = net(1)
    path = save_checkpoint(tmp_path / "c.pt", model, canary_loss=canary(model))
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x10
    path.write_bytes(bytes(data))
    refused(path, "failed its content hash", canary_loss_fn=canary)


def test_a_broken_model_is_not_saved(tmp_path, key):
    with pytest.raises(CheckpointError, match="already broken"):
        save_checkpoint(tmp_path / "c.pt", net(1), canary_loss=float("nan"))
    assert not (tmp_path / "c.pt").exists()
