-- The Media table for the embedded default, column for column like the PostgreSQL one.
-- Timestamps are ISO-8601 UTC text with milliseconds, so comparisons are lexicographic.
CREATE TABLE IF NOT EXISTS {table} (
  "id"          TEXT    NOT NULL PRIMARY KEY,
  "bucket"      TEXT    NOT NULL,
  "key"         TEXT    NOT NULL,
  "mimeType"    TEXT,
  "size"        INTEGER,
  "status"      TEXT    NOT NULL DEFAULT 'PENDING'
                CHECK ("status" IN ('PENDING', 'PROCESSING', 'READY', 'FAILED')),
  "thumbnails"  TEXT,
  "metadata"    TEXT,
  "error"       TEXT,
  "attempts"    INTEGER NOT NULL DEFAULT 0,
  "leaseUntil"  TEXT,
  "processedAt" TEXT,
  "createdAt"   TEXT    NOT NULL,
  "updatedAt"   TEXT    NOT NULL,
  "phash"       INTEGER,
  "phash0"      INTEGER,
  "phash1"      INTEGER,
  "phash2"      INTEGER,
  "phash3"      INTEGER
);

CREATE INDEX IF NOT EXISTS {status_index} ON {table} ("status");

-- Next: the `ALTER TABLE … ADD COLUMN` statements of the hash's columns ("phash", "phash0" to
-- "phash3") that a table made before them lacks (SQLite has no ADD COLUMN IF NOT EXISTS: the
-- adapter looks first), else nothing.
{add_phash}
CREATE INDEX IF NOT EXISTS {phash_index} ON {table} ("phash", "id");
CREATE INDEX IF NOT EXISTS {phash0_index} ON {table} ("phash0", "phash");
CREATE INDEX IF NOT EXISTS {phash1_index} ON {table} ("phash1", "phash");
CREATE INDEX IF NOT EXISTS {phash2_index} ON {table} ("phash2", "phash");
CREATE INDEX IF NOT EXISTS {phash3_index} ON {table} ("phash3", "phash");

-- The outbox of status events, like PostgreSQL's (docs/events.md). AUTOINCREMENT: a "seq" is
-- never reused after the rows before it were delivered and deleted, so `events tail` can
-- follow the table by it.
CREATE TABLE IF NOT EXISTS {outbox} (
  "seq"        INTEGER PRIMARY KEY AUTOINCREMENT,
  "id"         TEXT    NOT NULL,
  "target"     TEXT    NOT NULL,
  "mediaId"    TEXT    NOT NULL,
  "payload"    TEXT    NOT NULL,
  "attempts"   INTEGER NOT NULL DEFAULT 0,
  "leaseUntil" TEXT,
  "createdAt"  TEXT    NOT NULL
);

CREATE INDEX IF NOT EXISTS {outbox_index} ON {outbox} ("target", "mediaId", "seq");
