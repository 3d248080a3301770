"""Worker processes beside the benchmark's own: `worker.py` as a practice runs it, or the floor's
worker (`bench.floor_worker`). Each logs to a file, started and stopped the way a deployment
would (SIGTERM: it drains and tells the server, so its tasks go to the next worker)."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
READY = "worker started on task queue"  # what worker.py and bench.floor_worker log when up


def status_kb(pid: int) -> dict[str, int]:
    """VmHWM (peak resident set) and VmRSS (now), in kB, from /proc."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmHWM", "VmRSS"):
            fields[key] = int(value.split()[0])
    return fields


def cpu_seconds(pid: int) -> float:
    after_name = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(after_name[11]) + int(after_name[12])) / os.sysconf("SC_CLK_TCK")


async def until(check: Callable[[], bool], what: str, seconds: float) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while not check():
        if loop.time() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        await asyncio.sleep(0.25)


class WorkerProcess:
    """One worker subprocess (`args` after the interpreter, e.g. ["worker.py"]); its log goes
    to a file (a line per case and step: never read into this process's memory)."""

    def __init__(self, args: list[str], env: dict[str, str], log: Path) -> None:
        self._args = args
        self._env = env
        self._log = log
        self._process: asyncio.subprocess.Process | None = None

    @property
    def pid(self) -> int:
        assert self._process is not None
        return self._process.pid

    async def start(self) -> int:
        """Start it and wait until it is connected and about to poll; its RSS then, in kB."""
        with self._log.open("w") as log:
            self._process = await asyncio.create_subprocess_exec(
                sys.executable, *self._args, cwd=ROOT, env=self._env,
                stdout=asyncio.subprocess.DEVNULL, stderr=log,
            )  # fmt: skip
        await until(lambda: READY in self._log.read_text(), f"{self._args} ({self._log})", 60)
        await asyncio.sleep(1.0)  # `async with worker`: the pollers begin
        return status_kb(self.pid)["VmRSS"]

    async def idle(self, seconds: float = 60) -> None:
        """Until the worker uses under 5% of a core for a second: every task done."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        while loop.time() < deadline:
            before = cpu_seconds(self.pid)
            await asyncio.sleep(1.0)
            if cpu_seconds(self.pid) - before < 0.05:
                return

    async def stop(self) -> None:
        """SIGTERM: the worker drains and tells the server, so its tasks go to the next one."""
        if self._process is not None and self._process.returncode is None:
            self._process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self._process.wait(), 45)
            except TimeoutError:
                self._process.kill()
                await self._process.wait()


def worker_env(address: str, queue: str, database_url: str, **extra: str) -> dict[str, str]:
    """The environment of a `worker.py` for a benchmark: dry-run providers (no Twilio or
    SendGrid credentials), no metrics endpoint (ports would clash)."""
    return {
        **{k: v for k, v in os.environ.items() if not k.startswith(("TWILIO_", "SENDGRID_"))},
        "TEMPORAL_ADDRESS": address,
        "TEMPORAL_TASK_QUEUE": queue,
        "DATABASE_URL": database_url,
        "METRICS_ADDRESS": "",
        **extra,
    }
