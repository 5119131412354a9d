-- The Media table exactly as Prisma creates it from deploy/prisma/media.prisma (quoted camelCase
-- names, TIMESTAMP(3) holding UTC, a native enum, Prisma's constraint and index names; no
-- default on "updatedAt": Prisma's client sets @updatedAt itself, and so does every write of the
-- worker). tests/integration/test_prisma_schema.py compares the result with the SQL Prisma
-- generates (tests/api/fixtures/prisma-migration.sql).
-- Idempotent: safe to run on every start, and a no-op on a table Prisma's migrations made.
-- {table}, {pkey} and {status_index} are replaced by quoted identifiers derived from the
-- validated MEDIA_TABLE name (a plain identifier, so '{table}' is also a regclass literal).
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
