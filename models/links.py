"""Signed, expiring, single-case links to the web pages (pure: no I/O, `now` passed in).

A link names one case, one recipient (by role and id, never by name or address) and when it
expires, signed with the practice's link secret (itsdangerous, HMAC-SHA1 over the payload with a
key derived from the secret and a per-audience salt). Nothing in it is PHI: case ids are built
from appointment ids, and people are named by directory ids.

Two audiences, two salts, so a token minted for one page is not even a valid signature on the
other: `staff` (the therapist's or supervisor's close-out page) and `client` (the client's
three-choice page). The expiry is in the signed payload and checked against an explicit `now`,
so the rule is testable without a clock and the same on every server.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Literal

from itsdangerous import BadSignature, URLSafeSerializer
from pydantic import BaseModel

from models.case import RecipientRole

STAFF_PATH = "/case/"
"""The close-out page: `<PUBLIC_BASE_URL>/case/<token>`."""
CLIENT_PATH = "/r/"
"""The client's page (short, for SMS; says nothing about what it is): `<base>/r/<token>`."""


class LinkAudience(StrEnum):
    staff = "staff"
    client = "client"


_AUDIENCE = {
    RecipientRole.therapist: LinkAudience.staff,
    RecipientRole.supervisor: LinkAudience.staff,
    RecipientRole.client: LinkAudience.client,
}
"""Who gets a link at all: never the emergency contact, never the shared on-call address."""

_ROLE_CODE = {
    RecipientRole.therapist: "t",
    RecipientRole.supervisor: "s",
    RecipientRole.client: "c",
}
_CODE_ROLE = {code: role for role, code in _ROLE_CODE.items()}


def audience_of(role: RecipientRole) -> LinkAudience | None:
    """The page a recipient's link opens, or None: this recipient never gets a link."""
    return _AUDIENCE.get(role)


class LinkClaim(BaseModel):
    """What a valid link says: this case, this person in this role, until then."""

    case_id: str
    role: RecipientRole
    person_id: str
    expires_at: datetime


class LinkError(ValueError):
    """A link that must change nothing: `invalid` (tampered, another page's, another case's,
    signed with another secret) or `expired`."""

    def __init__(self, kind: Literal["invalid", "expired"], message: str) -> None:
        super().__init__(message)
        self.kind = kind


class LinkSigner:
    def __init__(self, secret: bytes) -> None:
        if len(secret) < 16:
            raise ValueError("the link secret must be at least 16 bytes")
        self._secret = secret

    def _serializer(self, audience: LinkAudience) -> URLSafeSerializer:
        return URLSafeSerializer(self._secret, salt=f"missed-session-outreach/{audience.value}")

    def mint(self, case_id: str, role: RecipientRole, person_id: str, expires_at: datetime) -> str:
        audience = audience_of(role)
        if audience is None:
            raise ValueError(f"no page link for the {role.value}")
        payload = [case_id, _ROLE_CODE[role], person_id, int(expires_at.timestamp())]
        token = self._serializer(audience).dumps(payload)
        assert isinstance(token, str)
        return token

    def verify(
        self,
        token: str,
        audience: LinkAudience,
        now: datetime,
        case_id: str | None = None,
    ) -> LinkClaim:
        """The claim of a valid, unexpired link for this page (and this case, if given);
        otherwise LinkError."""
        try:
            payload = self._serializer(audience).loads(token)
        except BadSignature:
            raise LinkError("invalid", "this link is not valid") from None
        claim = _claim(payload)
        if claim is None or audience_of(claim.role) is not audience:
            raise LinkError("invalid", "this link is not valid")
        if case_id is not None and claim.case_id != case_id:
            raise LinkError("invalid", "this link is for another case")
        if now >= claim.expires_at:
            raise LinkError("expired", "this link has expired")
        return claim


def _claim(payload: object) -> LinkClaim | None:
    """A signed payload of the expected shape (a signature over a hand-made list is still not
    trusted to hold the right types)."""
    if not isinstance(payload, list) or len(payload) != 4:
        return None
    case_id, code, person_id, expires = payload
    if not (isinstance(case_id, str) and isinstance(person_id, str) and code in _CODE_ROLE):
        return None
    if not isinstance(expires, int) or isinstance(expires, bool):
        return None
    try:
        expires_at = datetime.fromtimestamp(expires, UTC)
    except (OverflowError, OSError, ValueError):
        return None
    return LinkClaim(
        case_id=case_id, role=_CODE_ROLE[code], person_id=person_id, expires_at=expires_at
    )


class PageLinks:
    """Full URLs of the pages for one deployment (`PUBLIC_BASE_URL`), with each audience's
    lifetime: staff links are short-lived (every reminder carries a fresh one), the client's
    lasts long enough to show the materials of a close-out days later."""

    def __init__(
        self, signer: LinkSigner, base_url: str, staff_ttl: timedelta, client_ttl: timedelta
    ) -> None:
        self.signer = signer
        self.base_url = base_url.rstrip("/")
        self._ttl = {LinkAudience.staff: staff_ttl, LinkAudience.client: client_ttl}

    def url(self, case_id: str, role: RecipientRole, person_id: str, now: datetime) -> str | None:
        """The link for this recipient of this case, or None if they never get one."""
        audience = audience_of(role)
        if audience is None:
            return None
        token = self.signer.mint(case_id, role, person_id, now + self._ttl[audience])
        path = STAFF_PATH if audience is LinkAudience.staff else CLIENT_PATH
        return f"{self.base_url}{path}{token}"
