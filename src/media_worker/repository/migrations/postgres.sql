-- The Media table as Prisma creates it from the model in DESIGN.md (quoted camelCase names,
-- TIMESTAMP(3) in UTC, a native enum). Idempotent: safe to run on every start.
-- {table} is replaced by the quoted, validated MEDIA_TABLE name.
DO $$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_type WHERE typname = 'MediaStatus') THEN
    CREATE TYPE "MediaStatus" AS ENUM ('PENDING', 'PROCESSING', 'READY', 'FAILED');
  END IF;
END
$$;

CREATE TABLE IF NOT EXISTS {table} (
  "id"          TEXT          NOT NULL,
  "bucket"      TEXT          NOT NULL,
  "key"         TEXT          NOT NULL,
  "mimeType"    TEXT,
  "size"        BIGINT,
  "status"      "MediaStatus" NOT NULL DEFAULT 'PENDING',
  "thumbnails"  JSONB,
  "metadata"    JSONB,
  "error"       TEXT,
  "attempts"    INTEGER       NOT NULL DEFAULT 0,
  "leaseUntil"  TIMESTAMP(3),
  "processedAt" TIMESTAMP(3),
  "createdAt"   TIMESTAMP(3)  NOT NULL DEFAULT CURRENT_TIMESTAMP,
  -- Prisma sets @updatedAt itself; the default only helps rows inserted by other tools.
  "updatedAt"   TIMESTAMP(3)  NOT NULL DEFAULT CURRENT_TIMESTAMP,
  CONSTRAINT {pkey} PRIMARY KEY ("id")
);

CREATE INDEX IF NOT EXISTS {status_index} ON {table} ("status");
