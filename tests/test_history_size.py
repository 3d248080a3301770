"""How long a case's history grows: the longest normal path under `policies/default.toml` must
stay under 200 events, and the worst path any valid policy allows far below Temporal's limits
(a warning at 10,240 events, a hard stop at 51,200), continuing as new while it waits.

Run with `-s` to see the figures the README quotes."""

from __future__ import annotations

from datetime import timedelta

from temporalio.testing import WorkflowEnvironment

from models.case import Stage
from models.directory import Channel
from models.policy import OutreachRound, RiskLevel
from store.case_store import CaseStore
from tests.harness import DEFAULT_POLICY, harness
from workflows.missed_session import HISTORY_EVENT_BUDGET

NORMAL_PATH_TARGET = 200  # issue 13's target
TEMPORAL_WARNS_AT = 10_240


async def _longest_normal_path(env: WorkflowEnvironment, store: CaseStore) -> int:
    """Default policy, quiet hours on: the client never answers (three rounds), the emergency
    contact is tried, the therapist is reminded until the supervisor is told, then closes."""
    async with harness(env, store) as h:
        handle = await h.start(policy=DEFAULT_POLICY)
        await h.advance_to(handle, Stage.awaiting_therapist.value)
        await h.advance_for(handle, DEFAULT_POLICY.supervisor_after + timedelta(hours=1))
        await h.recorded_to(handle, "supervisor")
        resolution = await h.close_as_therapist(handle)
        lengths = await h.run_lengths(handle.id)
    roles = {a.recipient_role.value for a in resolution.attempts}
    assert {"client", "emergency_contact", "therapist", "supervisor"} <= roles
    assert len(lengths) == 1
    print(f"\nlongest normal path: {lengths[0]} events, {len(resolution.attempts)} messages")
    return lengths[0]


async def test_the_longest_normal_path_stays_under_200_events(
    time_skipping_env: WorkflowEnvironment, sqlite_store: CaseStore
) -> None:
    """170 to 190 events (with how completions fall into workflow tasks) since a
    step's messages share one activity (MESSAGES_TOGETHER); it was 232 with an activity per
    message, 271 before the store's writes were local activities. Time is skipped timer by
    timer (`advance_for`): one long skip timed out a reminder running on a loaded machine."""
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
