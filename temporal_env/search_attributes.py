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


async def register_search_attributes(client: Client) -> list[str]:
    """Add whichever of our attributes the namespace lacks; return the names added."""
    try:
        listed = await client.operator_service.list_search_attributes(
            ListSearchAttributesRequest(namespace=client.namespace)
        )
        existing = set(listed.custom_attributes)
    except RPCError as err:  # the time-skipping test server cannot list; it can add
        if err.status is not RPCStatusCode.UNIMPLEMENTED:
            raise
        existing = set()
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
