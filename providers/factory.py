"""Real providers where credentials are configured, dry runs elsewhere."""

from __future__ import annotations

from providers.base import EmailSender, Providers, SmsSender, VoiceCaller
from providers.dry_run import DryRunEmail, DryRunSms, DryRunVoice
from providers.sendgrid_provider import SendGridEmail
from providers.twilio_provider import CALL_STATUS_PATH, TwilioSms, TwilioVoice
from settings import Settings


def build_providers(settings: Settings) -> Providers:
    sms: SmsSender
    voice: VoiceCaller
    email: EmailSender
    if settings.twilio_account_sid and settings.twilio_auth_token and settings.twilio_from_number:
        args = (
            settings.twilio_account_sid,
            settings.twilio_auth_token.get_secret_value(),
            settings.twilio_from_number,
            settings.twilio_api_base_url,
        )
        public = settings.public_webhook_base()
        callback = public + CALL_STATUS_PATH if public else None
        sms, voice = TwilioSms(*args), TwilioVoice(*args, status_callback=callback)
    else:
        sms, voice = DryRunSms(), DryRunVoice()
    if settings.sendgrid_api_key and settings.sendgrid_from_email:
        email = SendGridEmail(
            settings.sendgrid_api_key.get_secret_value(),
            settings.sendgrid_from_email,
            settings.sendgrid_api_host,
        )
    else:
        email = DryRunEmail()
    return Providers(sms=sms, email=email, voice=voice)


def describe_providers(providers: Providers) -> str:
    """e.g. "sms=twilio voice=twilio email=dry-run" for start-up logs and the demo."""

    def kind(obj: object) -> str:
        name = type(obj).__name__
        return (
            "dry-run"
            if name.startswith("DryRun")
            else name.removesuffix("Sms").removesuffix("Voice").removesuffix("Email").lower()
        )

    return f"sms={kind(providers.sms)} voice={kind(providers.voice)} email={kind(providers.email)}"
