-- The Media table exactly as Prisma creates it from deploy/prisma/media.prisma (quoted camelCase
-- names, TIMESTAMP(3) holding UTC, a native enum, Prisma's constraint and index names; no
-- default on "updatedAt": Prisma's client sets @updatedAt itself, and so does every write of the
-- worker). tests/integration/test_prisma_schema.py compares the result with the SQL Prisma
-- generates (tests/api/fixtures/prisma-migration.sql).
-- Idempotent: safe to run on every start, and a no-op on a table Prisma's migrations made.
-- {table}, {pkey}, {status_index}, {phash_index}, {phash0_index} to {phash3_index}, {outbox},
-- {outbox_pkey} and {outbox_index} are replaced by quoted identifiers derived from the validated MEDIA_TABLE name (a plain
-- identifier, so '{table}' is also a regclass literal); the outbox of status events is
-- {table} + "Event".
DO $$
BEGIN
  -- Where CREATE TYPE would put it: the first schema of the search path, as Prisma's does.
  IF to_regtype('"MediaStatus"') IS NULL THEN
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
  "updatedAt"   TIMESTAMP(3)  NOT NULL,
  "phash"       BIGINT,
  "phash0"      INTEGER,
  "phash1"      INTEGER,
  "phash2"      INTEGER,
  "phash3"      INTEGER,
  CONSTRAINT {pkey} PRIMARY KEY ("id")
);

-- Tables made by earlier versions of this migration gave "updatedAt" a default that Prisma's
-- has not. Dropped only where present: ALTER TABLE would lock the table on every start.
DO $$
BEGIN
  IF EXISTS (SELECT 1 FROM pg_attrdef d
             JOIN pg_attribute a ON (a.attrelid, a.attnum) = (d.adrelid, d.adnum)
             WHERE d.adrelid = '{table}'::regclass AND a.attname = 'updatedAt') THEN
    ALTER TABLE {table} ALTER COLUMN "updatedAt" DROP DEFAULT;
  END IF;
END
$$;

CREATE INDEX IF NOT EXISTS {status_index} ON {table} ("status");

-- "phash" (near-duplicate search, docs/media.md) and its quarters "phash0" to "phash3" (the
-- index lookups of `similar`, similarity.py) came after the table: added last, where a new
-- table has them, and only where missing (ALTER TABLE locks the table even when it does
-- nothing). Rows READY before them keep NULL there; `similar` and `duplicates` read their
-- metadata's hash, or compute the distance to their "phash".
DO $$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_attribute
                 WHERE attrelid = '{table}'::regclass AND attname = 'phash'
                   AND NOT attisdropped) THEN
    ALTER TABLE {table} ADD COLUMN "phash" BIGINT;
  END IF;
  IF (SELECT count(*) FROM pg_attribute
      WHERE attrelid = '{table}'::regclass AND NOT attisdropped
        AND attname IN ('phash0', 'phash1', 'phash2', 'phash3')) < 4 THEN
    ALTER TABLE {table} ADD COLUMN IF NOT EXISTS "phash0" INTEGER,
                        ADD COLUMN IF NOT EXISTS "phash1" INTEGER,
                        ADD COLUMN IF NOT EXISTS "phash2" INTEGER,
                        ADD COLUMN IF NOT EXISTS "phash3" INTEGER;
  END IF;
END
$$;

CREATE INDEX IF NOT EXISTS {phash_index} ON {table} ("phash", "id");
CREATE INDEX IF NOT EXISTS {phash0_index} ON {table} ("phash0", "phash");
CREATE INDEX IF NOT EXISTS {phash1_index} ON {table} ("phash1", "phash");
CREATE INDEX IF NOT EXISTS {phash2_index} ON {table} ("phash2", "phash");
CREATE INDEX IF NOT EXISTS {phash3_index} ON {table} ("phash3", "phash");

-- The outbox of status events (docs/events.md): `model MediaEvent` of the Prisma schema. Always
-- created, so the table exists before a target is configured; rows are written only while one
-- is. BIGSERIAL makes the "<outbox>_seq_seq" sequence Prisma's autoincrement() makes.
CREATE TABLE IF NOT EXISTS {outbox} (
  "seq"        BIGSERIAL     NOT NULL,
  "id"         TEXT          NOT NULL,
  "target"     TEXT          NOT NULL,
  "mediaId"    TEXT          NOT NULL,
  "payload"    JSONB         NOT NULL,
  "attempts"   INTEGER       NOT NULL DEFAULT 0,
  "leaseUntil" TIMESTAMP(3),
  "createdAt"  TIMESTAMP(3)  NOT NULL DEFAULT CURRENT_TIMESTAMP,
  CONSTRAINT {outbox_pkey} PRIMARY KEY ("seq")
);

CREATE INDEX IF NOT EXISTS {outbox_index} ON {outbox} ("target", "mediaId", "seq");
