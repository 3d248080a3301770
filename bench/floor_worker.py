"""The floor's worker as a process of its own (`python -m bench.floor_worker ADDRESS QUEUE CACHE`):
`bench.throughput --worker-processes N` runs N-1 of these beside its own, as it runs N-1
`worker.py`s for the cases, so the floor gets the same processes the cases get."""

from __future__ import annotations

import asyncio
import logging
import signal
import sys

from temporalio.client import Client
from temporalio.worker import Worker

from bench.floor import FloorWorkflow, noop
from bench.processes import READY
from temporal_env.codec import data_converter
from temporal_env.process import exit_now


async def serve(address: str, queue: str, cache: int) -> None:
    client = await Client.connect(address, data_converter=data_converter(None))
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    worker = Worker(
        client,
        task_queue=queue,
        workflows=[FloorWorkflow],
        activities=[noop],
        max_cached_workflows=cache,
    )
    async with worker:
        logging.getLogger("bench.floor_worker").warning("%s %s", READY, queue)
        await stop.wait()


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING)
    asyncio.run(serve(sys.argv[1], sys.argv[2], int(sys.argv[3])))
    exit_now(0)
