"""Where a worker process's time goes, sampled by py-spy while it works: `bench.throughput
--profile` wraps its cases (not the floor) in `Sampler`.

py-spy reads the process's stacks from outside, about 100 times a second, without stopping it
(`--nonblocking`): unlike cProfile, which slows every Python call and so inflates the parts
with many small calls, it leaves the figures it measures nearly as they are. Every thread is
sampled (the event loop, the case store's SQLite threads, the SDK's workflow threads); a thread
waiting (a selector, a queue, a lock) is idle, not busy, and is left out.

Each busy sample goes to the first part its stack shows, in `PARTS` order: a store call made by
an activity counts as the store, the SDK's handling of a payload as the SDK.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

# (part, frame texts any of which puts a sample in it), first match wins. py-spy names a frame
# `function (path:line)`, the path relative to its import root: "(store/" is the project's store.
PARTS: list[tuple[str, tuple[str, ...]]] = [
    ("benchmark driver (opens cases, polls, closes them)", ("(bench/throughput.py", "(service/")),
    (
        "case store (SQLAlchemy, sqlite3/asyncpg)",
        ("(store/", "(sqlalchemy/", "(asyncpg/"),
    ),
    ("product: workflow code", ("(workflows/",)),
    (
        "Temporal SDK: workflow tasks (payloads, sandbox)",
        (
            "(temporalio/worker/_workflow",
            "(temporalio/worker/workflow_sandbox",
            "(temporalio/bridge/_visitor",
            "(temporalio/worker/_command_aware",
        ),
    ),
    ("product: activities and providers", ("(activities/", "(providers/", "(models/")),
    ("Temporal SDK: activity tasks, client, bridge", ("(temporalio/",)),
    ("pydantic (models in and out)", ("(pydantic",)),
    ("asyncio event loop and the rest", ("",)),
]

# The event loop's frame that runs a callback: what the stack shows above it (asyncio.run from
# the benchmark's main) is the same for every sample of the loop's thread, and is dropped.
LOOP_CALLBACK = "(asyncio/events.py"

# Leaf frames of a thread that is waiting, not working.
IDLE = (
    "select (selectors.py",
    "_worker (concurrent/futures/thread.py",
    "wait (threading.py",
    "get (queue.py",
)


def available() -> str | None:
    """py-spy's path beside this interpreter (the venv's), else on PATH, else None."""
    beside = Path(sys.executable).with_name("py-spy")
    return str(beside) if beside.exists() else shutil.which("py-spy")


@dataclass
class Profile:
    parts: Counter[str]
    idle: int
    rate: int

    def lines(self, cpu_seconds: float) -> list[str]:
        """The summary; `cpu_seconds` is the process's CPU over the same time. py-spy sees
        Python threads only: the rest of it is the SDK's Rust core (gRPC, protobuf, its state
        machines) and the C parts of the drivers, which are not sampled."""
        busy = sum(self.parts.values())
        if not busy:
            return ["profile: no busy samples"]
        title = (
            f"where this worker process's time goes during the cases (py-spy, Python threads: "
            f"{busy / self.rate:.1f} s busy of the process's {cpu_seconds:.1f} s CPU; the rest "
            "is the SDK's Rust core and C code, not sampled):"
        )
        rows = [
            f"  {part:<52} {count / self.rate:6.1f} s  {count / busy:5.1%}"
            for part, _ in PARTS
            if (count := self.parts.get(part, 0))
        ]
        return [title, *rows]


def summarize(raw: str, rate: int) -> Profile:
    """py-spy's raw output (`frame;frame;... count` per line) -> busy seconds by part."""
    parts: Counter[str] = Counter()
    idle = 0
    for line in raw.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        leaf = stack.rsplit(";", 1)[-1]
        if any(mark in leaf for mark in IDLE):
            idle += count
            continue
        work = stack.rsplit(LOOP_CALLBACK, 1)[-1]
        parts[next(part for part, marks in PARTS if any(m in work for m in marks))] += count
    return Profile(parts, idle, rate)


class Sampler:
    """`async with Sampler(folder) as sampler:` samples this process until the block ends;
    then `sampler.profile` holds the summary."""

    def __init__(self, folder: Path, rate: int = 100) -> None:
        self._output = folder / "py-spy.raw"
        self._rate = rate
        self._process: asyncio.subprocess.Process | None = None
        self.profile: Profile | None = None

    async def __aenter__(self) -> Sampler:
        binary = available()
        if binary is None:
            raise RuntimeError("--profile needs py-spy (make setup installs it)")
        args = ["record", "--pid", str(os.getpid()), "--rate", str(self._rate)]
        args += ["--format", "raw", "--nonblocking", "--output", str(self._output)]
        self._process = await asyncio.create_subprocess_exec(
            binary, *args, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE
        )
        await asyncio.sleep(1.0)  # py-spy attaches before the cases start
        return self

    async def __aexit__(
        self,
        _type: type[BaseException] | None,
        _exc: BaseException | None,
        _tb: TracebackType | None,
    ) -> None:
        assert self._process is not None
        self._process.send_signal(signal.SIGINT)  # py-spy writes its output and exits
        _, errors = await self._process.communicate()
        if not self._output.exists():
            raise RuntimeError(f"py-spy wrote no profile: {errors.decode(errors='replace')[-500:]}")
        self.profile = summarize(self._output.read_text(), self._rate)
