"""Cross-replica consistency under data parallelism: after the optimizer step every rank's
parameters must be identical, bit for bit. Each rank hashes its parameters' raw bytes; the
ranks compare the digests and, when they differ, the per-parameter digests, so the alert names
the rank and the tensors that differ.

Hashing the bytes rather than summing the values is what makes the check exact: a sum cannot
tell +0.0 from -0.0, nor two flips that cancel, and floating-point sums can hide a change in a
low mantissa bit under rounding. The cost is one copy of the parameters to host memory per
check (on GPU), so call it every few steps on large models, not necessarily every step.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from dataclasses import dataclass

import numpy as np
import torch
import torch.distributed as dist

from failwell.training.monitor import Alert

DIGEST_BYTES = 16  # per parameter; 128 bits make an accidental collision negligible
_SHOWN = 8  # parameter names listed in one alert


def _raw_bytes(tensor: torch.Tensor) -> memoryview:
    """The tensor's bytes in memory order (any dtype, bfloat16 included)."""
    flat = tensor.detach().reshape(-1).contiguous().cpu()
    return memoryview(flat.view(torch.uint8).numpy())


def parameter_digests(model: torch.nn.Module) -> dict[str, bytes]:
    """A BLAKE2b digest of each parameter's name, dtype, shape and raw bytes, in the order of
    ``named_parameters()`` (the same on every replica of one model)."""
    out = {}
    for name, p in model.named_parameters():
        h = hashlib.blake2b(digest_size=DIGEST_BYTES)
        h.update(f"{name}|{p.dtype}|{tuple(p.shape)}|".encode())
        h.update(_raw_bytes(p))
        out[name] = h.digest()
    return out


def model_digest(digests: dict[str, bytes]) -> bytes:
    """One 32-byte digest over the per-parameter digests, in order."""
    h = hashlib.blake2b(digest_size=32)
    for d in digests.values():
        h.update(d)
    return h.digest()


def _as_int64(data: bytes) -> torch.Tensor:
    return torch.from_numpy(np.frombuffer(data, dtype="<i8").copy())


def _float(bits: int) -> float:
    return float(np.int64(bits).view(np.float64))


def _collective_device(group) -> torch.device:
    """NCCL gathers CUDA tensors only; every other backend takes CPU tensors."""
    if dist.get_backend(group) == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def _gather(tensor: torch.Tensor, group) -> list[list[int]]:
    device = _collective_device(group)
    tensor = tensor.to(device)
    gathered = [torch.empty_like(tensor) for _ in range(dist.get_world_size(group))]
    dist.all_gather(gathered, tensor, group=group)
    return [t.cpu().tolist() for t in gathered]


@dataclass
class ReplicaMismatch:
    """A rank whose parameters differ: which tensors, and whether a majority of ranks agrees
    on the other value (with two ranks, or no majority, every disagreeing rank is named)."""

    rank: int
    parameters: list[str]
    majority: bool
    sums_agree: list[str]  # differing tensors whose float64 sums still agree


def compare_replicas(model: torch.nn.Module, group=None) -> list[ReplicaMismatch]:
    """Call on every rank after ``optimizer.step()``; returns the same list everywhere
    (empty when all replicas agree bit for bit). One small all-gather when they agree; a
    second one, of per-parameter digests, only when they do not."""
    digests = parameter_digests(model)
    names = list(digests)
    mine = torch.cat([_as_int64(model_digest(digests)),
                      torch.tensor([len(names)], dtype=torch.int64)])
    overall = [tuple(v) for v in _gather(mine, group)]
    if len(set(overall)) == 1:
        return []
    world = len(overall)
    top, votes = Counter(overall).most_common(1)[0]
    majority = votes > world / 2
    suspects = ([r for r, v in enumerate(overall) if v != top] if majority
                else list(range(world)))
    if len({v[-1] for v in overall}) > 1:  # different parameter lists: no table to compare
        return [ReplicaMismatch(r, [f"<{overall[r][-1]} parameters, "
                                    f"majority has {top[-1]}>"], majority, [])
                for r in suspects]
    # per parameter: two int64 of digest and the float64 sum's bits, for the report
    rows = []
    for name, p in model.named_parameters():
        total = p.detach().double().sum().reshape(1).cpu()
        rows.append(torch.cat([_as_int64(digests[name]), total.view(torch.int64)]))
    table = _gather(torch.stack(rows).reshape(-1), group)
    width = DIGEST_BYTES // 8 + 1
    per_rank = [[tuple(t[i * width:(i + 1) * width]) for i in range(len(names))]
                for t in table]
    reference = per_rank[overall.index(top)] if majority else None
    out = []
    for rank in suspects:
        differing, same_sum = [], []
        for i, name in enumerate(names):
            own = per_rank[rank][i]
            others = [reference[i]] if reference is not None else [
                per_rank[r][i] for r in range(world) if r != rank]
            if any(own[:-1] != o[:-1] for o in others):
                differing.append(name)
                if all(_float(own[-1]) == _float(o[-1]) for o in others):
                    same_sum.append(name)
        out.append(ReplicaMismatch(rank, differing, majority, same_sum))
    return out


def check_replicas(model: torch.nn.Module, step: int, group=None) -> list[Alert]:
    """Call on every rank after ``optimizer.step()``; returns the same alerts everywhere, one
    per rank that differs, naming the parameters (``Alert.value``: how many differ)."""
    alerts = []
    for m in compare_replicas(model, group):
        why = ("differ from the majority" if m.majority
               else "disagree and no majority says which rank is right")
        shown = ", ".join(m.parameters[:_SHOWN])
        more = f" and {len(m.parameters) - _SHOWN} more" if len(m.parameters) > _SHOWN else ""
        exact = (f"; their float64 sums agree for {', '.join(m.sums_agree[:_SHOWN])}, so "
                 "only a bit-exact comparison sees it") if m.sums_agree else ""
        alerts.append(Alert(step, "replica-mismatch", f"rank{m.rank}", float(len(m.parameters)),
                            f"rank {m.rank}'s parameters {why} after step {step}: "
                            f"{len(m.parameters)} tensor(s) differ bit for bit: "
                            f"{shown}{more}{exact}"))
    return alerts
