"""The no-show fee: policy amount, the payer's rules and the therapist's decision, in one place."""

from __future__ import annotations

from models.answers import FeeChoice, FeeDecision
from models.case import FeeAssessment
from models.policy import EscalationPolicy


def assess_fee(
    policy: EscalationPolicy,
    payer_allows_fee: bool,
    decision: FeeDecision | None,
    client_attended: bool,
) -> FeeAssessment:
    """Decide what is charged. A fee is never charged where the payer forbids one (e.g. Medicaid),
    whatever the therapist chose, and never when the client attended."""
    choice = decision.decision if decision else None

    def result(charged: int, reason: str) -> FeeAssessment:
        return FeeAssessment(
            policy_fee_cents=policy.no_show_fee_cents,
            currency=policy.currency,
            payer_allows_fee=payer_allows_fee,
            therapist_decision=choice,
            reason=reason,
            charged_cents=charged,
        )

    if client_attended:
        return result(0, "client attended (late); no fee")
    if policy.no_show_fee_cents == 0:
        return result(0, "the practice's policy sets no no-show fee")
    if not payer_allows_fee:
        suffix = " (therapist chose to charge; overridden)" if choice is FeeChoice.charge else ""
        return result(0, "payer does not allow no-show fees" + suffix)
    if decision is None or choice is FeeChoice.waive:
        reason = decision.reason if decision else "no decision recorded"
        return result(0, f"waived: {reason}")
    return result(policy.no_show_fee_cents, decision.reason or "charged per cancellation policy")
