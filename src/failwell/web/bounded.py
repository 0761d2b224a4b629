"""CPU work for a request that stops when the client goes away.

A request handler that computes (the blameless check over a pasted document) runs the work
in a worker thread and passes it a ``stop()`` that turns true once the client has
disconnected; the work asks it every few hundred steps and gives up. Its size is bounded
anyway (:mod:`failwell.limits`), so this only spares the server work nobody will read.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from typing import Any

import anyio
from fastapi import Request

POLL_S = 0.2


class ClientGone(Exception):
    """The client disconnected before the answer was ready."""


async def run_cpu(request: Request, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """``fn(*args, stop=..., **kwargs)`` in a worker thread; :class:`ClientGone` when the
    client left (``fn`` raises whatever it raises on ``stop()``, which is then dropped)."""
    gone = threading.Event()
    done = threading.Event()

    async def watch() -> None:
        while not done.is_set():
            if await request.is_disconnected():
                gone.set()
                return
            await anyio.sleep(POLL_S)

    async with anyio.create_task_group() as tasks:
        tasks.start_soon(watch)
        try:
            return await anyio.to_thread.run_sync(
                functools.partial(fn, *args, stop=gone.is_set, **kwargs))
        except Exception:
            if gone.is_set():
                raise ClientGone from None
            raise
        finally:
            done.set()
            tasks.cancel_scope.cancel()
