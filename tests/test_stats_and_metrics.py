"""What an on-call engineer watches: the case store's figures (`starter.py stats`) and the
worker's Prometheus endpoint with Temporal's runtime metrics beside the product's own."""

from __future__ import annotations

import asyncio
import json
import re
import socket
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from temporalio.api.workflowservice.v1 import GetSystemInfoRequest
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from models.case import AttemptResult, Stage
from models.directory import Channel
from models.outreach import OpenCaseRequest, StageChange
from starter import main
from store.case_store import CaseStore
from temporal_env.metrics import CaseMetrics, prometheus_runtime
from tests.directory_data import outreach_request

T0 = datetime(2026, 11, 2, 15, 0, tzinfo=UTC)
NOW = T0 + timedelta(hours=6)


async def _seed(store: CaseStore) -> None:
    """Three cases: one waiting 4 h for its therapist with an unconfirmed text, one in the
    grace wait, one closed (terminated); four messages."""
    for appointment, stage, at in (
        ("A1", Stage.awaiting_therapist, T0 + timedelta(hours=2)),
        ("A2", Stage.grace_wait, T0 + timedelta(hours=5)),
        ("A3", Stage.contacting_client, T0),
    ):
        await store.open_case(
            OpenCaseRequest(
                case_id=f"missed-session-{appointment}",
                appointment_id=appointment,
                client_id="C1",
                therapist_id="T1",
                scheduled_start=T0,
                policy_name="standard",
                opened_at=T0 if appointment != "A2" else at,
            )
        )
        await store.set_stage(
            StageChange(case_id=f"missed-session-{appointment}", stage=stage, at=at)
        )
    await store.mark_ended_outside("missed-session-A3", "TERMINATED", NOW)
    for step, channel, result, appointment in (
        ("client/1/sms", Channel.sms, AttemptResult.unconfirmed, "A1"),
        ("client/1/email", Channel.email, AttemptResult.sent, "A1"),
        ("client/1/voice", Channel.voice, AttemptResult.failed, "A1"),
        ("client/1/sms", Channel.sms, AttemptResult.sent, "A3"),
    ):
        request = outreach_request(step, channel, appointment)
        await store.start_attempt(request, T0)
        await store.finish_attempt(request.key, result, "", None, False, T0)
    await store.start_attempt(outreach_request("client/2/sms", Channel.sms, "A1"), T0)


async def test_the_store_counts_cases_by_stage_and_outcome_and_messages_by_result(
    case_store: CaseStore,
) -> None:
    await _seed(case_store)
    stats = await case_store.case_stats(NOW)

    assert stats.cases_opened == 3
    assert stats.cases_open == {"awaiting_therapist": 1, "grace_wait": 1}
    assert stats.cases_closed == {"terminated": 1}
    assert stats.oldest_awaiting_therapist_seconds == 4 * 3600
    counts = {(m.channel, m.result): m.count for m in stats.messages}
    assert counts == {
        ("email", "sent"): 1,
        ("sms", "in_flight"): 1,
        ("sms", "sent"): 1,
        ("sms", "unconfirmed"): 1,
        ("voice", "failed"): 1,
    }
    assert stats.unconfirmed_messages == 1 and stats.failed_messages() == 1
    assert stats.oldest_open_unconfirmed_seconds == 6 * 3600  # A1 opened at T0


async def test_an_empty_store_has_zero_figures_not_errors(case_store: CaseStore) -> None:
    stats = await case_store.case_stats(NOW)
    assert (stats.cases_opened, stats.cases_open, stats.messages) == (0, {}, [])
    assert stats.oldest_awaiting_therapist_seconds is None


def test_stats_prints_the_figures(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path}/cases.db"
    monkeypatch.setenv("DATABASE_URL", url)

    async def seed() -> None:
        store = CaseStore.from_url(url)
        await store.create_schema()
        await _seed(store)
        await store.close()

    asyncio.run(seed())
    assert main(["stats"]) == 0
    out = capsys.readouterr().out
    assert "cases opened: 3" in out and "open, awaiting_therapist: 1" in out
    assert "closed, terminated: 1" in out and "unconfirmed messages: 1" in out
    assert main(["stats", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["cases_open"]["grace_wait"] == 1


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_the_metrics_endpoint_serves_temporals_and_the_products_figures(
    time_skipping_env: WorkflowEnvironment, sqlite_store: CaseStore
) -> None:
    address = f"127.0.0.1:{_free_port()}"
    runtime = prometheus_runtime(address)
    target = time_skipping_env.client.service_client.config.target_host
    client = await Client.connect(target, runtime=runtime)
    await client.workflow_service.get_system_info(GetSystemInfoRequest())  # an RPC, metered
    await _seed(sqlite_store)
    CaseMetrics(runtime.metric_meter).publish(await sqlite_store.case_stats(NOW))
    async with httpx.AsyncClient() as http:
        text = (await http.get(f"http://{address}/metrics")).text

    samples = _samples(text)
    assert any(name.startswith("temporal_request") for name, _ in samples)
    assert samples["outreach_cases_open", 'stage="awaiting_therapist"'] == 1
    assert samples["outreach_cases_open", 'stage="contacting_client"'] == 0  # drawn as 0
    assert samples["outreach_messages", 'channel="sms",result="unconfirmed"'] == 1
    assert samples["outreach_oldest_awaiting_therapist_seconds", ""] == 4 * 3600
    assert samples["outreach_unconfirmed_messages", ""] == 1


def _samples(text: str) -> dict[tuple[str, str], float]:
    """Prometheus text format: (name, labels without the runtime's service_name) -> value."""
    samples = {}
    for line in text.splitlines():
        match = re.fullmatch(r"([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)", line)
        if match and not line.startswith("#"):
            labels = ",".join(
                label
                for label in (match.group(2) or "").split(",")
                if label and not label.startswith("service_name=")
            )
            samples[match.group(1), labels] = float(match.group(3))
    return samples


def test_the_dashboard_and_the_readmes_alerts_draw_only_metrics_the_worker_publishes() -> None:
    root = Path(__file__).resolve().parent.parent
    dashboard = json.loads((root / "ops" / "grafana-dashboard.json").read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    readme = (root / "README.md").read_text()
    published = {
        "outreach_cases_opened",
        "outreach_cases_closed",
        "outreach_cases_open",
        "outreach_oldest_awaiting_therapist_seconds",
        "outreach_messages",
        "outreach_unconfirmed_messages",
        "outreach_oldest_open_unconfirmed_seconds",
    }
    used = set(re.findall(r"outreach_\w+", " ".join(exprs) + readme))
    assert used and used <= published
    source = (root / "temporal_env" / "metrics.py").read_text()
    assert all(name.removeprefix("outreach_") in source for name in published)
