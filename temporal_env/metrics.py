"""Prometheus metrics of the worker: Temporal's runtime telemetry (task slots, schedule-to-start
latency, activity failures, sticky cache) and the product's own figures, on one endpoint.

The product's figures come from the case store (`CaseStore.case_stats`), not from counters in
the activities: every worker publishes the same practice-wide values, so a restart or a second
worker never resets or splits a count (alert on `max` across workers, not `sum`). They are
refreshed every `every` seconds by a task beside the worker.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import UTC, datetime

from temporalio.common import MetricMeter
from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig

from models.case import Stage
from models.stats import CaseStats
from store.case_store import CaseStore

log = logging.getLogger(__name__)
PREFIX = "outreach_"


def prometheus_runtime(bind_address: str) -> Runtime:
    """A Temporal runtime that serves its metrics, and those published on its meter, at
    http://<bind_address>/metrics."""
    prometheus = PrometheusConfig(bind_address=bind_address, durations_as_seconds=True)
    return Runtime(telemetry=TelemetryConfig(metrics=prometheus))


class CaseMetrics:
    """The case store's figures as gauges (see `models.stats.CaseStats`)."""

    def __init__(self, meter: MetricMeter) -> None:
        gauge = meter.create_gauge
        self._opened = gauge(f"{PREFIX}cases_opened", "Cases ever opened")
        self._closed = gauge(f"{PREFIX}cases_closed", "Closed cases, by outcome")
        self._open = gauge(f"{PREFIX}cases_open", "Open cases, by stage")
        self._waiting = meter.create_gauge_float(
            f"{PREFIX}oldest_awaiting_therapist_seconds",
            "How long the longest-waiting case has waited for its therapist (0: none waits)",
            "s",
        )
        self._messages = gauge(f"{PREFIX}messages", "Messages, by channel and result")
        self._unconfirmed = gauge(
            f"{PREFIX}unconfirmed_messages", "Messages whose delivery a crash left unknown"
        )
        self._oldest_unconfirmed = meter.create_gauge_float(
            f"{PREFIX}oldest_open_unconfirmed_seconds",
            "Age of the oldest open case with an unconfirmed message (0: none)",
            "s",
        )
        self._seen_messages: set[tuple[str, str]] = set()

    def publish(self, stats: CaseStats) -> None:
        self._opened.set(stats.cases_opened)
        for outcome, count in stats.cases_closed.items():
            self._closed.set(count, {"outcome": outcome})
        for stage in Stage:  # every stage, so one that empties drops to 0 on the graph
            if stage is not Stage.closed:
                self._open.set(stats.cases_open.get(stage.value, 0), {"stage": stage.value})
        self._waiting.set(stats.oldest_awaiting_therapist_seconds or 0.0)
        counts = {(m.channel, m.result): m.count for m in stats.messages}
        self._seen_messages |= counts.keys()
        for channel, result in sorted(self._seen_messages):
            self._messages.set(
                counts.get((channel, result), 0), {"channel": channel, "result": result}
            )
        self._unconfirmed.set(stats.unconfirmed_messages)
        self._oldest_unconfirmed.set(stats.oldest_open_unconfirmed_seconds or 0.0)


async def publish_forever(
    store: CaseStore,
    metrics: CaseMetrics,
    every: float,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> None:
    """Refresh the gauges until cancelled; a store that is down is logged, not fatal."""
    while True:
        try:
            metrics.publish(await store.case_stats(now()))
        except Exception as exc:  # the next refresh tries again; the worker carries on
            log.warning("case metrics not refreshed: %s", type(exc).__name__)
        await asyncio.sleep(every)
