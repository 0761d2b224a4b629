"""Cross-replica consistency under data parallelism: after the optimizer step every rank's
parameters must be identical; a checksum per rank, gathered, names the rank that differs."""

from __future__ import annotations

from collections import Counter

import torch
import torch.distributed as dist

from failwell.training.monitor import Alert


def parameter_checksum(model: torch.nn.Module) -> torch.Tensor:
    """Two float64 sums (plain and position-weighted) over all parameters: a flipped bit
    anywhere changes them."""
    flat = torch.cat([p.detach().flatten().double() for p in model.parameters()])
    weights = torch.arange(1, flat.numel() + 1, dtype=torch.float64)
    return torch.stack([flat.sum(), (flat * weights).sum()])


def check_replicas(model: torch.nn.Module, step: int, group=None) -> list[Alert]:
    """Call on every rank after ``optimizer.step()``; returns the same alerts everywhere."""
    mine = parameter_checksum(model)
    gathered = [torch.empty_like(mine) for _ in range(dist.get_world_size(group))]
    dist.all_gather(gathered, mine, group=group)
    values = [tuple(c.tolist()) for c in gathered]
    if len(set(values)) == 1:
        return []
    top, votes = Counter(values).most_common(1)[0]
    majority = votes > len(values) / 2
    suspects = [r for r, v in enumerate(values) if v != top] if majority else list(
        range(len(values)))
    why = ("differ from the majority" if majority
           else "disagree and no majority says which is right")
    return [Alert(step, "replica-mismatch", f"rank{rank}", values[rank][0],
                  f"rank {rank}'s parameters {why} after step {step} "
                  f"(checksums {[list(v) for v in values]})") for rank in suspects]
