"""Cross-replica consistency with a real process group: 2 CPU processes, gloo backend,
DistributedDataParallel. A bit flipped in one replica's weights is caught at that step."""

import json
import os

import pytest

torch = pytest.importorskip("torch")
import torch.distributed as dist  # noqa: E402
import torch.multiprocessing as mp  # noqa: E402

if not dist.is_available() or not dist.is_gloo_available():
    pytest.skip("torch.distributed with gloo is not available", allow_module_level=True)


def replica(rank: int, world: int, init_file: str, out_dir: str, flip_at: int) -> None:
    from failwell.training import faults
    from failwell.training.distributed import check_replicas

    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank,
                            world_size=world)
    torch.manual_seed(0)  # same initial weights on every replica
    model = torch.nn.Sequential(torch.nn.Linear(10, 32), torch.nn.ReLU(), torch.nn.Linear(32, 2))
    ddp = torch.nn.parallel.DistributedDataParallel(model)
    optimizer = torch.optim.SGD(ddp.parameters(), lr=0.05)
    generator = torch.Generator().manual_seed(100 + rank)  # each rank its own data shard
    alerts = []
    for step in range(1, 31):
        x = torch.randn(32, 10, generator=generator)
        y = (x[:, 0] > 0).long()
        optimizer.zero_grad()
        torch.nn.functional.cross_entropy(ddp(x), y).backward()
        optimizer.step()
        if flip_at and step == flip_at and rank == 1:
            faults.flip_weight(model, index=7, bit=20)  # a mantissa bit: a tiny change
        alerts += [a.to_dict() for a in check_replicas(model, step)]
    with open(f"{out_dir}/rank{rank}.json", "w") as fh:
        json.dump(alerts, fh)
    dist.barrier()  # both ranks are done with every collective
    # Leave without running gloo's C++ destructors: once in a few CI runs they aborted at
    # exit ("terminate called without an active exception") after all the work was done.
    os._exit(0)


@pytest.mark.parametrize("flip_at", [0, 12])
def test_replicas_agree_until_one_is_corrupted(tmp_path, flip_at):
    mp.spawn(replica, args=(2, str(tmp_path / "init"), str(tmp_path), flip_at), nprocs=2,
             join=True)
    results = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    if not flip_at:
        assert results == [[], []]  # clean run: no alert on either rank
        return
    assert results[0] == results[1]  # every rank reaches the same verdict
    first = results[0][0]
    assert first["step"] == flip_at and first["kind"] == "replica-mismatch"
