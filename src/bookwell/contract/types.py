"""Types the generated models use in place of pydantic's defaults (`make contract-models` maps them).

Pydantic reads `"0.5"` or `1700000000` as a Unix timestamp; the contract says `format: date-time`,
so an `Instant` must be an RFC 3339 string with an offset, and nothing else.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated
from typing import Any

from pydantic import AwareDatetime
from pydantic import BeforeValidator

_RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?(Z|[+-]\d{2}:\d{2})$")


def _rfc3339(value: Any) -> datetime:
    text = value.upper() if isinstance(value, str) else None
    if text is None or not _RFC3339.match(text):
        raise ValueError("must be an RFC 3339 date-time with an offset, e.g. 2026-05-04T09:00:00Z")
    return datetime.fromisoformat(text)  # a well-shaped but impossible date (02-30) raises ValueError


Instant = Annotated[AwareDatetime, BeforeValidator(_rfc3339)]
