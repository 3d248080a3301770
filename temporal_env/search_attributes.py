"""Register the custom search attributes on a cluster (idempotent). The demo's dev server gets
them at start instead (`WorkflowEnvironment.start_local(search_attributes=...)`); on Temporal
Cloud, register them in its console or with `tcld`."""

from __future__ import annotations

from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import (
    AddSearchAttributesRequest,
    ListSearchAttributesRequest,
)
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from workflows.search_attributes import ALL_KEYS


async def _existing(client: Client) -> set[str] | None:
    """The namespace's custom attributes; None where the server cannot list them (the
    time-skipping test server can only add)."""
    try:
        listed = await client.operator_service.list_search_attributes(
            ListSearchAttributesRequest(namespace=client.namespace)
        )
    except RPCError as err:
        if err.status is not RPCStatusCode.UNIMPLEMENTED:
            raise
        return None
    return set(listed.custom_attributes)


async def missing_search_attributes(client: Client) -> list[str]:
    """Our attributes the namespace lacks: a case started without them would fail its first
    workflow task (and wait there until someone registers them)."""
    existing = await _existing(client)
    if existing is None:
        return []
    return sorted(key.name for key in ALL_KEYS if key.name not in existing)


async def register_search_attributes(client: Client) -> list[str]:
    """Add whichever of our attributes the namespace lacks; return the names added."""
    existing = await _existing(client) or set()
    missing = {
        key.name: IndexedValueType.ValueType(key.indexed_value_type.value)
        for key in ALL_KEYS
        if key.name not in existing
    }
    if missing:
        try:
            await client.operator_service.add_search_attributes(
                AddSearchAttributesRequest(namespace=client.namespace, search_attributes=missing)
            )
        except RPCError as err:
            if err.status is not RPCStatusCode.ALREADY_EXISTS:
                raise
    return sorted(missing)
