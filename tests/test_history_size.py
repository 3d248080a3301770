"""How long a case's history grows: the longest normal path under `policies/default.toml` must
stay under 200 events, and the worst path any valid policy allows far below Temporal's limits
(a warning at 10,240 events, a hard stop at 51,200), continuing as new while it waits.

Run with `-s` to see the figures the README quotes."""

from __future__ import annotations

from collections import Counter
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from temporalio.api.enums.v1 import EventType
from temporalio.testing import WorkflowEnvironment

from models.case import Attempt, Purpose, RecipientRole, Stage
from models.directory import Channel
from models.policy import OutreachRound, RiskLevel
from store.case_store import CaseStore
from tests.harness import DEFAULT_POLICY, REACHED, harness
from workflows.missed_session import HISTORY_EVENT_BUDGET

NORMAL_PATH_TARGET = 200  # issue 13's target
TEMPORAL_WARNS_AT = 10_240


def _supervisor_and_every_reminder(attempts: list[Attempt]) -> bool:
    """The last message before the first renotice: the supervisor's and the final reminder."""
    reminders = {a.step for a in attempts if a.purpose is Purpose.therapist_reminder}
    supervisor = any(a.recipient_role is RecipientRole.supervisor for a in attempts)
    return supervisor and len(reminders) == DEFAULT_POLICY.therapist_max_reminders


# The client's zone in tests/directory_data.py and a session start in their quiet hours. How
# many steps quiet hours split into "email now, call and text at 08:00" depends on the hour the
# session starts: every half hour of a day measured once gave 166, 171, 172 or 177 events, and
# 21:00 gives the most.
CLIENT_ZONE = ZoneInfo("America/New_York")
LONGEST_START = time(21, 0)


async def _skip_to_local(env: WorkflowEnvironment, at: time) -> datetime:
    """Skip the time-skipping server's clock to the next `at` in the client's zone."""
    now = (await env.get_current_time()).astimezone(CLIENT_ZONE)
    target = datetime.combine(now.date(), at, CLIENT_ZONE)
    if target <= now:
        target = datetime.combine(now.date() + timedelta(days=1), at, CLIENT_ZONE)
    await env.sleep(target - now)
    return target


async def _longest_normal_path(env: WorkflowEnvironment, store: CaseStore) -> int:
    """Default policy, quiet hours on, a 21:00 session: the client never answers (three rounds),
    the emergency contact is tried, the therapist is reminded until the supervisor is told,
    then closes. Driven without queries (`recorded_unqueried`): on the time-skipping server
    each query that meets a running workflow task adds one to the history, which no real case
    sees (the dev server adds nothing)."""
    async with harness(env, store) as h:
        session = await _skip_to_local(env, LONGEST_START)
        handle = await h.start(policy=DEFAULT_POLICY, scheduled_start=session)
        await h.recorded_unqueried(handle, _supervisor_and_every_reminder, "every escalation")
        await h.answer(handle, "client_reached", **REACHED.model_dump(mode="json"))
        resolution = await handle.result()
        lengths = await h.run_lengths(handle.id)
        history = await handle.fetch_history()
    roles = {a.recipient_role.value for a in resolution.attempts}
    assert {"client", "emergency_contact", "therapist", "supervisor"} <= roles
    assert len(lengths) == 1
    kinds = Counter(EventType.Name(event.event_type) for event in history.events)
    print(f"\nlongest normal path: {lengths[0]} events, {len(resolution.attempts)} messages")
    print("  " + ", ".join(f"{kind.removeprefix('EVENT_TYPE_')} {n}" for kind, n in kinds.items()))
    return lengths[0]


async def test_the_longest_normal_path_stays_under_200_events(
    time_skipping_env: WorkflowEnvironment, sqlite_store: CaseStore
) -> None:
    """177 events since a step's messages share one activity (MESSAGES_TOGETHER); it was
    232 with an activity per message, 271 before the store's writes were local activities."""
    assert await _longest_normal_path(time_skipping_env, sqlite_store) <= NORMAL_PATH_TARGET


async def test_the_worst_path_a_valid_policy_allows_stays_far_below_temporals_limit(
    time_skipping_env: WorkflowEnvironment, sqlite_store: CaseStore
) -> None:
    """Every limit at its maximum: ten rounds of three channels before the emergency contact,
    fifty reminders, quiet hours on; the therapist answers only after a week."""
    every_channel = [Channel.voice, Channel.sms, Channel.email]
    worst = DEFAULT_POLICY.model_copy(
        update={
            "rounds": [OutreachRound(channels=every_channel, then_wait=timedelta(hours=1))] * 10,
            "client_rounds_before_emergency_contact": {risk: 10 for risk in RiskLevel},
            "therapist_channels": every_channel,
            "therapist_max_reminders": 50,
            "therapist_reminder_every": timedelta(minutes=1),
            "supervisor_renotify_every": timedelta(hours=1),
        }
    )
    async with harness(time_skipping_env, sqlite_store) as h:
        handle = await h.start(policy=worst)
        await h.advance_to(handle, Stage.awaiting_therapist.value)
        await time_skipping_env.sleep(timedelta(days=4))
        await h.close_as_therapist(handle)
        lengths = await h.run_lengths(handle.id)

    print(f"\nworst valid policy: runs of {lengths} events (newest first)")
    assert len(lengths) >= 2  # it continued as new while it waited
    assert max(lengths) <= 2 * HISTORY_EVENT_BUDGET < TEMPORAL_WARNS_AT // 8, lengths
