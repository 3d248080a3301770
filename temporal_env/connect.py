"""One way to connect, for the worker, the command line and the demo.

Uses Temporal's standard environment configuration (`temporalio.envconfig`): TEMPORAL_ADDRESS,
TEMPORAL_NAMESPACE, TEMPORAL_API_KEY, TEMPORAL_TLS*, TEMPORAL_PROFILE or a config file, so the
same code runs against the local dev server, a self-hosted cluster or Temporal Cloud.
"""

from __future__ import annotations

import os
from typing import Any

from dotenv import dotenv_values
from temporalio.client import Client
from temporalio.envconfig import ClientConfig
from temporalio.runtime import Runtime

from settings import Settings
from temporal_env.codec import data_converter


def _environment() -> dict[str, str]:
    """The process environment over `.env`'s TEMPORAL_* lines, so `.env` configures Temporal
    like every other setting (the environment wins, as in `settings.Settings`)."""
    from_file = {
        key: value
        for key, value in dotenv_values(".env").items()
        if key.startswith("TEMPORAL_") and value is not None
    }
    return {**from_file, **os.environ}


def connect_config(address: str | None = None) -> dict[str, Any]:
    config: dict[str, Any] = dict(
        ClientConfig.load_client_connect_config(override_env_vars=_environment())
    )
    if address:
        config["target_host"] = address
    config.setdefault("target_host", "localhost:7233")
    return config


def payload_keys() -> str | None:
    """The configured payload keys (`PAYLOAD_KEYS`, from the environment or `.env`)."""
    keys = Settings().payload_keys
    return keys.get_secret_value() if keys else None


async def connect(address: str | None = None, runtime: Runtime | None = None) -> Client:
    """Connect with the pydantic data converter (plain JSON would lose datetimes and types),
    sealed by the payload codec when PAYLOAD_KEYS is set; `runtime` e.g. to serve metrics."""
    return await Client.connect(
        **connect_config(address), data_converter=data_converter(payload_keys()), runtime=runtime
    )
