"""Reading the payloads in a history's JSON, as stored (base64), for tests about what Temporal
keeps."""

from __future__ import annotations

import base64
from collections.abc import Iterator


def payloads(node: object) -> Iterator[tuple[dict[str, str], bytes]]:
    """Every payload in a history's JSON: its metadata and its data, decoded from base64."""
    if isinstance(node, dict):
        if "metadata" in node and "data" in node and isinstance(node["data"], str):
            yield node["metadata"], base64.b64decode(node["data"])
            return
        for value in node.values():
            yield from payloads(value)
    elif isinstance(node, list):
        for value in node:
            yield from payloads(value)


def readable(node: object) -> bytes:
    """All payload data of a history, decoded from base64 and joined: what a reader sees."""
    return b"\n".join(data for _, data in payloads(node))
