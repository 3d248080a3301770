"""Adapters to the outside world's messaging services (Twilio, SendGrid) and their dry-run twins.

Activities talk to the `SmsSender`, `EmailSender` and `VoiceCaller` protocols in `providers.base`;
`providers.factory.build_providers` picks the real client or the dry run from the settings.
"""
