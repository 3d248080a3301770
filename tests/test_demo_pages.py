"""`starter.py demo` as a newcomer runs it in a terminal: it serves the pages and prints their
links; the printed close-out link of the case it leaves open closes that case, and the printed
client link of the closed case shows its between-session materials. (A pseudo-terminal, so the
demo keeps running; its own dev server replaced by one on a free port, as TEMPORAL_ADDRESS
allows.)"""

from __future__ import annotations

import asyncio
import os
import pty
import re
import signal
import sys
import uuid
from pathlib import Path

import httpx
import pytest
from temporalio.testing import WorkflowEnvironment

from models.case import Resolution
from web.serve import free_port

ROOT = Path(__file__).parent.parent
pytestmark = pytest.mark.drill(seconds=25)
LINK = re.compile(r"^\s+(case \d, [^:]+):\s+(http\S+)$")


async def _printed_links(
    stdout: asyncio.StreamReader, seconds: float = 120
) -> tuple[dict[str, str], str]:
    links: dict[str, str] = {}
    output: list[str] = []

    async def read() -> None:
        while len(links) < 4:
            line = (await stdout.readline()).decode()
            if not line:
                raise AssertionError(
                    "the demo ended without printing its links:\n" + "".join(output)
                )
            output.append(line)
            match = LINK.match(line.rstrip())
            if match:
                links[match.group(1)] = match.group(2)

    try:
        await asyncio.wait_for(read(), timeout=seconds)
    except TimeoutError:
        raise AssertionError(
            f"no links within {seconds:g} s; it printed:\n" + "".join(output)
        ) from None
    return links, "".join(output)


async def test_the_demo_prints_links_that_close_its_open_case(
    dev_server: WorkflowEnvironment, tmp_path: Path
) -> None:
    port = free_port("127.0.0.1")
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("TWILIO_", "SENDGRID_"))},
        "PYTHONUNBUFFERED": "1",
        "TEMPORAL_ADDRESS": dev_server.client.service_client.config.target_host,
        "TEMPORAL_TASK_QUEUE": f"demo-{uuid.uuid4().hex[:8]}",
        "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/cases.db",
        "LINK_SECRET": "demo-test-secret-0123456789",
        "WEB_PORT": str(port),
    }
    terminal, its_end = pty.openpty()  # a terminal on stdin: the demo keeps running
    demo = await asyncio.create_subprocess_exec(
        sys.executable,
        "starter.py",
        "demo",
        cwd=ROOT,
        env=env,
        stdin=its_end,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    os.close(its_end)
    assert demo.stdout is not None
    try:
        links, output = await _printed_links(demo.stdout)
        close_out = links["case 2, therapist T100's close-out page"]
        case_id = re.findall(r"opened (missed-session-\S+) \(client C200", output)[0]
        async with httpx.AsyncClient(timeout=30) as web:
            page = await web.get(close_out)
            closed = await web.post(
                close_out,
                data={
                    "outcome": "reached_safe",
                    "note": "Called Robin back; safe.",
                    "follow_up_plan": "Next week as usual.",
                    "fee_decision": "charge",
                    "fee_reason": "",
                },
            )
            handle = dev_server.client.get_workflow_handle(case_id, result_type=Resolution)
            resolution = await asyncio.wait_for(handle.result(), timeout=60)
            materials = await web.get(links["case 1, the client's page (materials)"])
            supervisor = await web.get(links["case 2, supervisor T200's page"])
    finally:
        demo.send_signal(signal.SIGINT)
        await demo.wait()
        os.close(terminal)

    assert f"http://127.0.0.1:{port}/case/" in close_out
    assert page.status_code == 200 and case_id in page.text
    assert closed.status_code == 200 and "closed as reached_safe" in closed.text
    assert (resolution.outcome.value, resolution.closed_by) == ("reached_safe", "T100")
    assert materials.status_code == 200 and "breathing exercise" in materials.text
    assert supervisor.status_code == 410  # the case is closed: the supervisor's link is used


async def test_serve_serves_the_pages(tmp_path: Path) -> None:
    port = free_port("127.0.0.1")
    env = {
        **os.environ,
        "PYTHONUNBUFFERED": "1",
        "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/cases.db",
        "LINK_SECRET": "serve-test-secret-0123456789",
        "TEMPORAL_ADDRESS": "127.0.0.1:1",  # not needed to refuse a bad link
    }
    serve = await asyncio.create_subprocess_exec(
        sys.executable,
        *("starter.py", "serve", "--port", str(port)),
        cwd=ROOT,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as web:
            for _ in range(100):
                try:
                    health = await web.get("/healthz")
                    break
                except httpx.TransportError:
                    await asyncio.sleep(0.1)
            bad = await web.get("/case/not-a-token")
            css = await web.get("/static/pages.css")
    finally:
        serve.send_signal(signal.SIGINT)
        output, _ = await serve.communicate()

    assert health.json() == {"ok": True, "codec_server": False, "pages": True}
    assert bad.status_code == 403 and "This link is not valid" in bad.text
    assert css.status_code == 200 and "focus-visible" in css.text
    printed = output.decode()
    assert "pages: http://127.0.0.1:8000/case/<token>" in printed
    assert "messages carry no page links" in printed  # the default URL is loopback
    assert '"GET /case/… HTTP/1.1" 403' in printed  # the access log hides tokens
    assert "not-a-token" not in printed
