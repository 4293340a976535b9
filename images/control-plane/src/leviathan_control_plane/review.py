"""`review_by`: a disable may name the time someone must look at it again.

Past that time the switch stays off (nothing here can turn it on); the
control plane only reports the review as overdue. A `review_by` it cannot
read is a problem it reports, never a reason to change the switch.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Review:
    by: dt.datetime | None = None
    problem: str = ""

    @property
    def timestamp(self) -> float | None:
        return self.by.timestamp() if self.by else None

    def overdue(self, enabled: bool, now: float) -> bool:
        return not enabled and self.by is not None and now >= self.by.timestamp()


def review_from(document: dict[str, Any] | None) -> Review:
    """The review time of a loaded config: absent, a time with a zone, or a problem."""
    value = (document or {}).get("review_by")
    if value is None or value == "":
        return Review()
    if isinstance(value, str):
        try:
            value = dt.datetime.fromisoformat(value.strip())
        except ValueError:
            return Review(problem=f"review_by {value[:64]!r} is not a time like 2026-12-01T09:00:00Z")
    if not isinstance(value, dt.datetime):
        # YAML reads an unquoted date (no time) as a date, a number as a number.
        return Review(problem=f"review_by must be a date and time with a zone, not {type(value).__name__} {value!r}")
    if value.tzinfo is None:
        return Review(problem=f"review_by {value.isoformat()} has no time zone: add Z or +00:00")
    return Review(by=value)
