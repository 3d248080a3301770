"""A real Radicale CalDAV server for tests, run as a subprocess on 127.0.0.1.

Why a real server and not a fake: what the CalDAV code must get right is what real servers do
(calendar-query REPORTs, time-range filters, 207 multistatus, 401 challenges), and Radicale
starts in about half a second. Use it as an async context manager:

    async with running_radicale(tmp_path) as server:                  # [auth] type = none
        calendar_url = await make_calendar(server, "practice")
        await put_event(server, calendar_url, ICS_TEXT)

    async with running_radicale(tmp_path, users={"ana": "s3cret"}) as server:  # htpasswd plain

or through the module-scoped fixtures `radicale` and `radicale_with_auth`, imported by a test
module (a fixture is found by its name, so the import is all that is needed):

    from tests.radicale_server import radicale_fixture, radicale_with_auth_fixture  # noqa: F401

    async def test_something(radicale: RadicaleServer) -> None: ...

With `[auth] type = none` Radicale accepts any password, but its default rights (`owner_only`)
still give each user only their own collections, so every URL here is under the server's user.
"""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import pytest
from caldav.aio import AsyncDAVClient, Calendar, Event

START_TIMEOUT = 10.0  # seconds; Radicale normally answers within ~0.5 s


@dataclass(frozen=True)
class RadicaleServer:
    """A running server: where it is and who may log in. With auth none any password works."""

    base_url: str  # http://127.0.0.1:PORT (no trailing slash)
    port: int
    username: str
    password: str

    def calendar_url(self, name: str) -> str:
        """The URL of the user's collection `name` (it need not exist yet)."""
        return f"{self.base_url}/{self.username}/{name}/"

    def client(self, password: str | None = None) -> AsyncDAVClient:
        """A caldav async client logged in as the server's user (or with another password)."""
        return AsyncDAVClient(
            url=f"{self.base_url}/",
            username=self.username,
            password=self.password if password is None else password,
            timeout=10,
        )


def free_port() -> int:
    """A port nothing listens on right now (the OS picks it; Radicale binds it a moment later)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _config_text(folder: Path, port: int, htpasswd: Path | None) -> str:
    """A complete config, so nothing from /etc/radicale or ~/.config leaks into a test."""
    if htpasswd is None:
        auth = ["type = none"]
    else:
        auth = ["type = htpasswd", f"htpasswd_filename = {htpasswd}", "htpasswd_encryption = plain"]
    lines = [
        "[server]",
        f"hosts = 127.0.0.1:{port}",
        "delay_on_error = 0",
        "[auth]",
        *auth,
        "delay = 0",  # Radicale otherwise sleeps ~1 s on every failed login (a brute-force brake)
        "[rights]",
        "type = owner_only",
        "[storage]",
        f"filesystem_folder = {folder / 'collections'}",
        "[web]",
        "type = none",
        "[logging]",
        "level = warning",
    ]
    return "\n".join(lines) + "\n"


def _prepare(folder: Path, users: dict[str, str] | None, port: int) -> Path:
    """Write the config (and the htpasswd file for `users`) into `folder`; return the config."""
    folder.mkdir(parents=True, exist_ok=True)
    htpasswd: Path | None = None
    if users:
        htpasswd = folder / "users"
        htpasswd.write_text("".join(f"{name}:{password}\n" for name, password in users.items()))
    config = folder / "radicale.conf"
    config.write_text(_config_text(folder, port, htpasswd))
    return config


def _tail(log: Path) -> str:
    """The end of Radicale's output, for a startup failure's message."""
    return log.read_text(errors="replace")[-2000:] if log.exists() else ""


async def _wait_until_listening(process: asyncio.subprocess.Process, port: int, log: Path) -> None:
    """Poll the port until Radicale accepts connections; fail fast if it exited."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + START_TIMEOUT
    while True:
        if process.returncode is not None:
            raise RuntimeError(f"radicale exited with status {process.returncode}: {_tail(log)}")
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            if loop.time() > deadline:
                raise RuntimeError(
                    f"radicale did not listen on port {port} within {START_TIMEOUT} s: {_tail(log)}"
                ) from None
            await asyncio.sleep(0.05)
            continue
        writer.close()
        await writer.wait_closed()
        return


async def _stop(process: asyncio.subprocess.Process) -> None:
    """Terminate, and kill if it does not go within 5 s: a test must never leave it running."""
    if process.returncode is not None:
        return
    process.terminate()
    try:
        await asyncio.wait_for(process.wait(), 5)
    except TimeoutError:
        process.kill()
        await process.wait()


@asynccontextmanager
async def running_radicale(
    folder: Path, users: dict[str, str] | None = None
) -> AsyncIterator[RadicaleServer]:
    """Radicale on a free port of 127.0.0.1, storing into `folder`, for the `async with` block.

    Without `users`: `[auth] type = none` (any password; the server's user is "therapist").
    With `users`: htpasswd plain auth for exactly those users (the first is the server's user),
    so a wrong password gets a real 401.
    """
    username, password = next(iter(users.items())) if users else ("therapist", "any-password")
    port = free_port()
    config = _prepare(folder, users, port)
    log = folder / "radicale.log"
    with _open_log(log) as log_file:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "radicale",
            "--config",
            str(config),
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
    try:
        await _wait_until_listening(process, port, log)
        yield RadicaleServer(f"http://127.0.0.1:{port}", port, username, password)
    finally:
        await _stop(process)


def _open_log(log: Path) -> BinaryIO:
    """Radicale's stdout and stderr go to a file: a pipe nobody reads could fill and block it."""
    return log.open("wb")


# ---------------------------------------------------------------------- helpers
async def make_calendar(server: RadicaleServer, name: str | None = None) -> str:
    """Create a calendar collection (MKCALENDAR) and return its URL. A fresh name by default,
    so tests sharing one server never see each other's events."""
    cal_id = name or f"cal-{uuid.uuid4().hex[:12]}"
    async with server.client() as client:
        principal = await client.get_principal()
        calendar = await principal.make_calendar(name=f"Test calendar {cal_id}", cal_id=cal_id)
    url = str(calendar.url)
    assert url == server.calendar_url(cal_id), url
    return url


async def put_event(server: RadicaleServer, calendar_url: str, ics: str) -> str:
    """PUT one calendar object resource (a whole VCALENDAR: series, overrides, VTIMEZONE);
    saving again with the same UID replaces it. Returns the resource's URL."""
    async with server.client() as client:
        event = await Calendar(client, url=calendar_url).save_event(ics)
        return str(event.url)


async def delete_event(server: RadicaleServer, calendar_url: str, uid: str) -> None:
    """DELETE the calendar object resource holding `uid`."""
    async with server.client() as client:
        event: Event = await Calendar(client, url=calendar_url).get_event_by_uid(uid)
        await event.delete()


# ---------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module", name="radicale")
async def radicale_fixture(
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[RadicaleServer]:
    """One Radicale with `[auth] type = none` per test module (starting one costs ~0.5 s)."""
    async with running_radicale(tmp_path_factory.mktemp("radicale")) as server:
        yield server


@pytest.fixture(scope="module", name="radicale_with_auth")
async def radicale_with_auth_fixture(
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[RadicaleServer]:
    """One Radicale with htpasswd plain auth (user "ana") per test module, for 401s."""
    users = {"ana": "correct-horse-battery"}
    async with running_radicale(tmp_path_factory.mktemp("radicale-auth"), users) as server:
        yield server
