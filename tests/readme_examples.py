"""The README's "Send an Update" examples, read from the README itself, so the tests check
what a newcomer will paste into the Web UI."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

README = Path(__file__).parent.parent / "README.md"
_ROW = re.compile(r"^\s*\|\s*`(\w+)`\s*\|\s*`(\{.*\})`\s*\|\s*$")


def update_examples() -> dict[str, dict[str, Any]]:
    """Update name -> its example JSON input, from the README's table."""
    examples = {}
    for line in README.read_text().splitlines():
        match = _ROW.match(line)
        if match:
            examples[match.group(1)] = json.loads(match.group(2))
    return examples
