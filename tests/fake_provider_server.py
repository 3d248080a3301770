"""A local fake of the Twilio REST API (Messages, Calls) and SendGrid v3 mail send.

A real HTTP server on 127.0.0.1 (port 0), so a worker in another process can use it through
TWILIO_API_BASE_URL / SENDGRID_API_HOST = `fake.base_url`. It validates like the real APIs
(auth, AccountSid, required fields), records every request, and can script faults:

    async with FakeProviderServer() as fake:
        fake.fail_next("Messages.json", 429)           # one 429, then success
        fake.reject_number("+15555550123", code=21610)  # recipient opted out
        fake.answered_by["+15555550124"] = "human"      # call outcome: answered
        fake.call_status["+15555550125"] = "busy"
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import random
import re
import secrets
from dataclasses import dataclass, field
from email.utils import formatdate
from typing import Any

from aiohttp import web

_ACCOUNT = r"/2010-04-01/Accounts/{sid}"
_ACCOUNT_SID = re.compile(r"^AC[0-9a-f]{32}$")


@dataclass
class RecordedRequest:
    method: str
    path: str
    form: dict[str, str] = field(default_factory=dict)  # Twilio form posts
    json: dict[str, Any] | None = None  # SendGrid JSON bodies
    headers: dict[str, str] = field(default_factory=dict)
    status: int = 0  # the status the fake answered with
    provider_id: str | None = None  # the SM/CA sid or X-Message-Id the fake answered with
    fault: str | None = None  # what `chaos` did to it, if anything
    at: float = 0.0  # loop time it arrived


# What `FakeProviderServer.chaos` may do to a request that creates a message or a call.
CHAOS_FAULTS = ("429", "500", "503", "reset", "slow", "21211", "21610", "21614")


@dataclass
class Chaos:
    """Faults at a rate, reproducibly (seeded): 429 with Retry-After, 500, 503, a connection
    reset after the request arrived, an answer slower than the client's timeout (the message
    WAS taken), and Twilio's permanent errors (invalid number, opted out, not a mobile)."""

    rate: float
    seed: int = 7
    slow_seconds: float = 3.0
    retry_after: str = "1"

    def __post_init__(self) -> None:
        self.random = random.Random(self.seed)

    def pick(self, twilio: bool) -> str | None:
        if self.random.random() >= self.rate:
            return None
        choices = CHAOS_FAULTS if twilio else CHAOS_FAULTS[:5]
        return self.random.choice(choices)


_RECORD = web.RequestKey("record", RecordedRequest)


def _twilio_error(status: int, code: int, message: str) -> web.Response:
    more_info = f"https://www.twilio.com/docs/errors/{code}"
    body = {"code": code, "message": message, "more_info": more_info, "status": status}
    return web.json_response(body, status=status)


def _sendgrid_error(status: int, message: str, field_name: str | None = None) -> web.Response:
    body = {"errors": [{"message": message, "field": field_name, "help": None}]}
    return web.json_response(body, status=status)


class FakeProviderServer:
    def __init__(self) -> None:
        self.requests: list[RecordedRequest] = []
        self.answered_by: dict[str, str] = {}  # To number -> AnsweredBy of a completed call
        self.default_answered_by = "machine_end_beep"
        self.call_status: dict[str, str] = {}  # To number -> final status (default completed)
        self.base_url = ""
        self._faults: list[list[Any]] = []  # [path_suffix, status, times left, code, retry]
        self._resets: list[list[Any]] = []  # [path_suffix, times left]
        self._delays: list[list[Any]] = []  # [path_suffix, seconds, times left]
        self._rejected: dict[str, tuple[int, int]] = {}  # To number -> (code, status)
        self._calls: dict[str, dict[str, Any]] = {}  # call sid -> call resource
        self._runner: web.AppRunner | None = None
        self.chaos: Chaos | None = None  # random faults on message and call creation

    # -- scripting and inspection ---------------------------------------------------------------
    def fail_next(
        self,
        path_suffix: str,
        status: int,
        times: int = 1,
        code: int | None = None,
        retry_after: str | None = None,
    ) -> None:
        """The next `times` requests whose path ends with `path_suffix` get `status` (Twilio
        error JSON with `code`, default 20000 + status, or SendGrid's error JSON), with a
        Retry-After header if given."""
        self._faults.append([path_suffix, status, times, code or 20000 + status, retry_after])

    def reset_next(self, path_suffix: str, times: int = 1) -> None:
        """The next `times` matching requests are read and recorded, then the connection is
        dropped without an answer: the provider may have taken the message."""
        self._resets.append([path_suffix, times])

    def delay_next(self, path_suffix: str, seconds: float, times: int = 1) -> None:
        """The next `times` matching requests are handled (and recorded) normally, but the
        response is held back `seconds`: a provider that took the message, then timed out."""
        self._delays.append([path_suffix, seconds, times])

    def reject_number(self, number: str, code: int = 21211, status: int = 400) -> None:
        """Every Twilio message or call to `number` fails with Twilio error `code`."""
        self._rejected[number] = (code, status)

    def sms(self) -> list[RecordedRequest]:
        return [
            r for r in self.requests if r.method == "POST" and r.path.endswith("/Messages.json")
        ]

    def calls(self) -> list[RecordedRequest]:
        return [r for r in self.requests if r.method == "POST" and r.path.endswith("/Calls.json")]

    def emails(self) -> list[RecordedRequest]:
        return [r for r in self.requests if r.path == "/v3/mail/send"]

    # -- lifecycle ------------------------------------------------------------------------------
    async def __aenter__(self) -> FakeProviderServer:
        app = web.Application(middlewares=[self._record])
        app.router.add_post(_ACCOUNT + "/Messages.json", self._create_message)
        app.router.add_post(_ACCOUNT + "/Calls.json", self._create_call)
        app.router.add_get(_ACCOUNT + "/Calls/{call_sid}.json", self._fetch_call)
        app.router.add_post("/v3/mail/send", self._send_mail)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        host, port = self._runner.addresses[0][:2]
        self.base_url = f"http://{host}:{port}"
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    # -- middleware: record, authenticate, scripted faults --------------------------------------
    @web.middleware
    async def _record(self, request: web.Request, handler: Any) -> web.StreamResponse:
        twilio = request.path.startswith("/2010-04-01/")
        record = RecordedRequest(request.method, request.path, headers=dict(request.headers))
        if request.content_type == "application/x-www-form-urlencoded":
            record.form = {k: str(v) for k, v in (await request.post()).items()}
        elif request.can_read_body:
            try:
                record.json = await request.json()
            except ValueError:
                record.json = None
        record.at = asyncio.get_running_loop().time()
        self.requests.append(record)
        request[_RECORD] = record
        response = (
            self._reject_unauthenticated(request, twilio)
            or self._fault(request, twilio)
            or self._chaos(request, twilio)
        )
        if response is None:
            try:
                response = await handler(request)
            except web.HTTPException as exc:  # e.g. 404/405 for paths the fake does not serve
                record.status = exc.status
                raise
        record.status = response.status
        if record.fault == "slow" and self.chaos is not None:
            await asyncio.sleep(self.chaos.slow_seconds)  # taken, answered too late
        for delay in self._delays:
            if delay[2] > 0 and request.path.endswith(delay[0]):
                delay[2] -= 1
                await asyncio.sleep(delay[1])
                break
        return response

    def _reject_unauthenticated(self, request: web.Request, twilio: bool) -> web.Response | None:
        auth = request.headers.get("Authorization", "")
        if twilio:
            try:
                user, _, password = base64.b64decode(auth.removeprefix("Basic ")).partition(b":")
            except (binascii.Error, ValueError):
                user = password = b""
            if not (auth.startswith("Basic ") and user and password):
                return _twilio_error(401, 20003, "Authenticate")
            if not _ACCOUNT_SID.match(request.match_info.get("sid", "")):
                return _twilio_error(404, 20404, "The requested resource was not found")
        elif not (auth.startswith("Bearer ") and auth[7:].strip()):
            return _sendgrid_error(401, "The provided authorization grant is invalid")
        return None

    def _fault(self, request: web.Request, twilio: bool) -> web.Response | None:
        for reset in self._resets:
            if reset[1] > 0 and request.path.endswith(reset[0]):
                reset[1] -= 1
                if request.transport is not None:
                    request.transport.abort()  # the request arrived; no answer ever comes
                raise ConnectionResetError("scripted reset")
        for fault in self._faults:
            suffix, status, times, code, retry_after = fault
            if times > 0 and request.path.endswith(suffix):
                fault[2] -= 1
                response = (
                    _twilio_error(status, code, f"Scripted failure (HTTP {status})")
                    if twilio
                    else _sendgrid_error(status, f"Scripted failure (HTTP {status})")
                )
                if retry_after is not None:
                    response.headers["Retry-After"] = retry_after
                return response
        return None

    def _chaos(self, request: web.Request, twilio: bool) -> web.Response | None:
        creates = request.method == "POST" and (
            request.path.endswith(("/Messages.json", "/Calls.json"))
            or request.path == "/v3/mail/send"
        )
        if self.chaos is None or not creates:
            return None
        fault = request[_RECORD].fault = self.chaos.pick(twilio)
        if fault is None or fault == "slow":
            return None
        if fault == "reset":
            if request.transport is not None:
                request.transport.abort()
            raise ConnectionResetError("chaos reset")
        status = int(fault) if len(fault) == 3 else 400
        if twilio:
            code = int(fault) if len(fault) == 5 else 20000 + status
            response = _twilio_error(status, code, f"Chaos (Twilio {code})")
        else:
            response = _sendgrid_error(status, f"Chaos (HTTP {status})")
        if status == 429:
            response.headers["Retry-After"] = self.chaos.retry_after
        return response

    # -- Twilio -----------------------------------------------------------------------------------
    def _resource(self, request: web.Request, prefix: str, kind: str) -> dict[str, Any]:
        form, sid = request[_RECORD].form, prefix + secrets.token_hex(16)
        now = formatdate(usegmt=True)
        account = request.match_info["sid"]
        return {
            "sid": sid,
            "account_sid": account,
            "to": form["To"],
            "from": form["From"],
            "status": "queued",
            "direction": "outbound-api",
            "api_version": "2010-04-01",
            "date_created": now,
            "date_updated": now,
            "price": None,
            "price_unit": "USD",
            "uri": f"/2010-04-01/Accounts/{account}/{kind}/{sid}.json",
            "subresource_uris": {},
        }

    def _check_recipient(
        self, request: web.Request, missing: dict[str, int]
    ) -> web.Response | None:
        form = request[_RECORD].form
        for name, code in missing.items():
            if not form.get(name):
                return _twilio_error(400, code, f"A '{name}' parameter is required.")
        if form["To"] in self._rejected:
            code, status = self._rejected[form["To"]]
            return _twilio_error(status, code, f"Twilio error {code} for this 'To' number")
        return None

    async def _create_message(self, request: web.Request) -> web.Response:
        error = self._check_recipient(request, {"To": 21604, "From": 21603, "Body": 21602})
        if error is not None:
            return error
        message = self._resource(request, "SM", "Messages")
        request[_RECORD].provider_id = message["sid"]
        body = request[_RECORD].form["Body"]
        message.update(body=body, num_segments="1", num_media="0", error_code=None)
        message.update(error_message=None, date_sent=None, messaging_service_sid=None)
        return web.json_response(message, status=201)

    async def _create_call(self, request: web.Request) -> web.Response:
        error = self._check_recipient(request, {"To": 21201, "From": 21213})
        if error is not None:
            return error
        form = request[_RECORD].form
        if not (form.get("Twiml") or form.get("Url") or form.get("ApplicationSid")):
            return _twilio_error(400, 21205, "Url parameter is required.")
        call = self._resource(request, "CA", "Calls")
        request[_RECORD].provider_id = call["sid"]
        call.update(answered_by=None, duration=None, start_time=None, end_time=None)
        self._calls[call["sid"]] = call
        return web.json_response(call, status=201)

    async def _fetch_call(self, request: web.Request) -> web.Response:
        call = self._calls.get(request.match_info["call_sid"])
        if call is None or call["account_sid"] != request.match_info["sid"]:
            return _twilio_error(404, 20404, "The requested resource was not found")
        status = self.call_status.get(call["to"], "completed")
        answered_by = None
        if status == "completed":
            answered_by = self.answered_by.get(call["to"], self.default_answered_by)
        return web.json_response({**call, "status": status, "answered_by": answered_by})

    # -- SendGrid ---------------------------------------------------------------------------------
    async def _send_mail(self, request: web.Request) -> web.Response:
        mail = request[_RECORD].json
        if not isinstance(mail, dict):
            return _sendgrid_error(400, "Bad Request: the request body must be JSON")
        personalizations = mail.get("personalizations") or [{}]
        if not all(p.get("to") and p["to"][0].get("email") for p in personalizations):
            return _sendgrid_error(400, "The to array is required.", "personalizations.0.to")
        if not (mail.get("from") or {}).get("email"):
            return _sendgrid_error(400, "The from object must be provided.", "from")
        request[_RECORD].provider_id = message_id = secrets.token_urlsafe(16)
        return web.Response(status=202, headers={"X-Message-Id": message_id})
