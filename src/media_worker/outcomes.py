"""What can become of one delivery, and how long a message is hidden before it comes back.

The delays are computed here, not retried here: the queue holds the message for the delay and
delivers it again (retry loops proper use tenacity and boto3's retry modes), so each is a
formula of a few lines rather than a library call.
"""

from __future__ import annotations

import math
import random
from datetime import UTC, datetime
from enum import StrEnum


class Outcome(StrEnum):
    """What became of one delivery."""

    READY = "ready"  # thumbnails stored, row READY, message deleted
    FAILED = "failed"  # permanent failure: row FAILED, message deleted
    GAVE_UP = "gave_up"  # transient failures until MAX_ATTEMPTS: row FAILED, message deleted
    RETRY = "retry"  # transient failure: row PENDING (when reachable), message kept
    DEFERRED = "deferred"  # the database was unreachable before a claim: message kept
    SKIPPED = "skipped"  # missing row past its grace, or already finished: message deleted
    AWAITING_ROW = "awaiting_row"  # no row yet, within MISSING_ROW_GRACE_SECONDS: message kept
    HELD = "held"  # another worker holds a live lease: message hidden until it can end
    LOST = "lost"  # our claim was taken over while we worked: nothing written
    POISON = "poison"  # unusable message: dead-lettered or deleted


# The `outcome` label of media_worker_jobs_total for each outcome.
METRIC_OUTCOMES = {
    Outcome.READY: "ready", Outcome.FAILED: "failed_permanent",
    Outcome.GAVE_UP: "failed_transient", Outcome.RETRY: "retry", Outcome.DEFERRED: "retry",
    Outcome.SKIPPED: "skipped", Outcome.AWAITING_ROW: "awaiting_row", Outcome.HELD: "held",
    Outcome.LOST: "lost", Outcome.POISON: "poison",
}

MISSING_ROW_MAX_DELAY_SECONDS = 30


def retry_delay(receive_count: int, base: float, cap: float) -> int:
    """Before a failed job comes back: exponential in the receive count, with "equal
    jitter" (a uniform draw from the upper half), so a burst of failures does not return as a
    burst and no retry comes back almost at once."""
    ceiling = min(cap, base * 2 ** max(receive_count - 1, 0))
    return max(1, round(random.uniform(ceiling / 2, ceiling)))


def missing_row_delay(receive_count: int) -> int:
    """2, 4, 8, 16, 30, 30 … seconds: a row committed a moment late is found within seconds,
    and a 120 s grace costs about eight receives, below a redrive policy's usual ten."""
    return min(MISSING_ROW_MAX_DELAY_SECONDS, 2 ** max(receive_count, 1))


def until_lease_ends(lease_until: datetime | None, cap: int) -> int:
    """Seconds until a live lease can have ended (a second past it), at most `cap`: a
    duplicate comes back then and finds the row finished (and is deleted) or abandoned (and
    claims it), instead of staying hidden for a whole visibility timeout."""
    if lease_until is None:
        return 1
    left = (lease_until - datetime.now(UTC)).total_seconds()
    return max(1, min(cap, math.ceil(left) + 1))
