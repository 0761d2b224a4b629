"""Where partitions are processed: in this process one after another, or on Dask workers.

Both engines do one thing, ``map_reduce(fn, partitions)``: apply ``fn`` to every partition
and merge the partial results (:func:`failwell.scanner.partials.merge`). The local engine
streams, so memory holds one batch plus the merged partials. The Dask engine maps on the
workers and merges there in a tree of fan-in 8, so only the final partial reaches the
client; a task whose worker dies is rerun elsewhere (``retries``) and a task that keeps
killing workers becomes one :class:`ScaleError`.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Callable
from typing import Any

from failwell.errors import FailwellError, InputError, require
from failwell.progress import Progress
from failwell.scale import hashes
from failwell.scanner.partials import merge, merge_all

FAN_IN = 8


class ScaleError(FailwellError):
    """The cluster could not finish the scan (a worker kept dying, the scheduler went away)."""


class LocalEngine:
    name = "local"
    workers = 1
    address = None
    dashboard = None

    def map_reduce(self, fn: Callable[[Any], Any], items: list[Any],
                   progress: Progress | None = None, label: str = "") -> Any:
        total = None
        for i, item in enumerate(items):
            total = merge(total, fn(item))
            if progress:
                progress(label, i + 1, len(items))
        return total

    def close(self) -> None:
        pass


class DaskEngine:
    name = "dask"

    def __init__(self, client: Any = None, scheduler: str | None = None,
                 workers: int | None = None, retries: int = 2, timeout: float = 5.0):
        distributed = require("distributed", extra="dask", purpose="--engine dask")
        self.retries = retries
        self._own: list[Any] = []
        if client is not None:
            self.client = client
        elif scheduler:
            try:
                self.client = distributed.Client(scheduler, timeout=timeout)
            except (OSError, TimeoutError, ValueError) as exc:
                raise InputError(f"Could not reach the Dask scheduler at {scheduler}: "
                                 f"{exc}") from None
            self._own.append(self.client)
        else:
            cluster = distributed.LocalCluster(
                n_workers=workers or os.cpu_count() or 1, threads_per_worker=1, processes=True,
                host="127.0.0.1", scheduler_kwargs={"dashboard_address": "127.0.0.1:0"},
                silence_logs=logging.ERROR)  # no fixed port: a second scan may be running
            self.client = distributed.Client(cluster)
            self._own += [self.client, cluster]
        self.address = self.client.scheduler.address
        # Dask's dashboard, where the scheduler serves one (it needs bokeh there)
        served = self.client.scheduler_info().get("services", {})
        self.dashboard = self.client.dashboard_link if "dashboard" in served else None

    @property
    def workers(self) -> int:
        return len(self.client.scheduler_info().get("workers", {}))

    def map_reduce(self, fn: Callable[[Any], Any], items: list[Any],
                   progress: Progress | None = None, label: str = "") -> Any:
        from distributed import as_completed
        from distributed.scheduler import KilledWorker

        client = self.client
        opts = {"retries": self.retries, "pure": False}
        try:
            # The job (roles, stages, the model's bytes) is one task's result, so each worker
            # fetches it once, and Dask can rebuild it if every worker holding it dies
            # (scattered data could not be rebuilt).
            job = client.submit(_identity, fn, pure=False)
            mapped = client.map(_apply, items, fn=job, **opts)
            # Row hashes leave the tree: they are shuffled by hash across the workers.
            stripped = client.map(hashes.strip, mapped, **opts)
            frames = client.map(hashes.frame, mapped, **opts)
            level = list(stripped)
            while len(level) > 1:
                level = [client.submit(merge_all, level[i:i + FAN_IN], **opts)
                         for i in range(0, len(level), FAN_IN)]
            # A partition's full partial is released once both of its halves exist.
            index = {f.key: i for i, f in enumerate(stripped)} | \
                {f.key: i for i, f in enumerate(frames)}
            halves = [0] * len(items)
            for future in as_completed([*stripped, *frames]):
                if future.status == "error":
                    future.result()  # raises the task's own error
                if future.status == "cancelled":
                    raise ScaleError(f"Dask cancelled {label or 'the scan'}: its workers or "
                                     "scheduler went away.")
                i = index[future.key]
                halves[i] += 1
                if halves[i] == 2:
                    mapped[i] = None
                    if progress:
                        progress(label, sum(h == 2 for h in halves), len(items))
            return hashes.shuffled(client, level[0].result(), frames)
        except KilledWorker as exc:
            raise ScaleError(f"Dask workers kept dying while running {label or 'the scan'} "
                             f"({exc}); check their memory limit and logs.") from None
        except (OSError, TimeoutError) as exc:
            raise ScaleError(f"Lost the Dask cluster during {label or 'the scan'}: "
                             f"{exc}") from None

    def close(self) -> None:
        for thing in self._own:
            with contextlib.suppress(Exception):  # closing must not hide the scan's error
                thing.close()


def _identity(x: Any) -> Any:
    return x


def _apply(item: Any, fn: Callable[[Any], Any]) -> Any:
    return fn(item)


def engine_for(name: str, *, client: Any = None, scheduler: str | None = None,
               workers: int | None = None) -> LocalEngine | DaskEngine:
    if name == "dask" or client is not None or scheduler:
        return DaskEngine(client=client, scheduler=scheduler, workers=workers)
    if name == "local":
        return LocalEngine()
    raise InputError(f"Unknown engine {name!r}: use local or dask.")
