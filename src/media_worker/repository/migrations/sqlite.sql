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
  "updatedAt"   TEXT    NOT NULL
);

CREATE INDEX IF NOT EXISTS {status_index} ON {table} ("status");
