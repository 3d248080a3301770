"""ClientTextNoticeWorkflow: a client with no open case texted the practice's number, and their
therapist of record is told by email (the text itself stays in the record, not the message).

Started by the inbound-SMS webhook (`service.replies`) with the id `client-text-<MessageSid>`,
so a text Twilio delivers twice tells the therapist once. Its one step is the same idempotent
send as a case's messages (`OutreachActivities.send_email`)."""

from __future__ import annotations

from datetime import timedelta

from pydantic import BaseModel
from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from activities.outreach import OutreachActivities
    from models.case import Attempt, Purpose, RecipientRole
    from models.directory import Channel
    from models.outreach import OutreachRequest

NOTICE_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=5), maximum_interval=timedelta(minutes=1)
)


class TextNotice(BaseModel):
    client_id: str
    therapist_id: str


@workflow.defn
class ClientTextNoticeWorkflow:
    @workflow.run
    async def run(self, notice: TextNotice) -> Attempt:
        notice_id = workflow.info().workflow_id
        request = OutreachRequest(
            case_id=notice_id,
            appointment_id=notice_id,
            step="therapist/text-notice/email",
            channel=Channel.email,
            recipient_role=RecipientRole.therapist,
            purpose=Purpose.client_texted,
            round=None,
            client_id=notice.client_id,
            therapist_id=notice.therapist_id,
            scheduled_start=workflow.now(),
            give_up_after=timedelta(minutes=5),
        )
        return await workflow.execute_activity_method(
            OutreachActivities.send_email,
            request,
            start_to_close_timeout=timedelta(seconds=30),
            retry_policy=NOTICE_RETRY,
            summary="Email to therapist: a client texted",
        )
