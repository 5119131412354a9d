"""What the embedded default's SQLite files (queue and table) agree on."""

# How long a statement waits for another process's write lock before giving up. Writes are
# single short statements or BEGIN IMMEDIATE blocks of a few, so only a stalled process holds
# one this long; the same wait for the queue and the table keeps an outage of one from looking
# like an outage of the other.
BUSY_TIMEOUT_MS = 15_000
