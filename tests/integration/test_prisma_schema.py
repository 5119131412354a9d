"""`media-worker migrate` creates exactly what Prisma creates from deploy/prisma/media.prisma.

One fresh database gets the SQL Prisma applies (tests/api/fixtures/prisma-migration.sql,
recorded from Prisma's schema engine by tests/api/prisma-sql.mjs: no Node needed here), another
gets the worker's migration; their catalogs must be the same: columns (order, type with
precision, nullability, default), enum labels in order, indexes, constraints, and nothing else
in the schema.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql

from media_worker.repository.postgres import PostgresMediaRepository

pytestmark = pytest.mark.services

PRISMA_SQL = Path(__file__).resolve().parents[1] / "api" / "fixtures" / "prisma-migration.sql"


@pytest.fixture
def new_database(postgres_server: str) -> Iterator[Callable[[], str]]:
    """Makes fresh, empty databases for one test (as many as it asks for), dropped afterwards."""
    names: list[str] = []

    def make() -> str:
        name = f"mw_test_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(postgres_server, autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        names.append(name)
        return postgres_server.rsplit("/", 1)[0] + f"/{name}"

    yield make
    with psycopg.connect(postgres_server, autocommit=True) as conn:
        for name in names:
            drop = sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)")
            conn.execute(drop.format(sql.Identifier(name)))


def apply_prisma_sql(url: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(PRISMA_SQL.read_text(encoding="utf-8"))


def worker_migrate(url: str, table: str = "Media") -> None:
    repository = PostgresMediaRepository(url, table=table)
    try:
        repository.migrate()
    finally:
        repository.close()


CATALOG_QUERIES: dict[str, str] = {
    "relations": """
        SELECT c.relname, c.relkind FROM pg_class c
        JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = 'public' ORDER BY 1""",
    "columns": """
        SELECT c.relname, a.attnum, a.attname, format_type(a.atttypid, a.atttypmod) AS type,
               a.attnotnull, pg_get_expr(d.adbin, d.adrelid) AS "default", a.attidentity,
               a.attgenerated, co.collname
        FROM pg_attribute a
        JOIN pg_class c ON c.oid = a.attrelid
        JOIN pg_namespace n ON n.oid = c.relnamespace
        LEFT JOIN pg_attrdef d ON (d.adrelid, d.adnum) = (a.attrelid, a.attnum)
        LEFT JOIN pg_collation co ON co.oid = a.attcollation AND a.attcollation <> 0
        WHERE n.nspname = 'public' AND c.relkind = 'r' AND a.attnum > 0
          AND NOT a.attisdropped
        ORDER BY 1, 2""",
    "types": """
        SELECT t.typname, t.typtype FROM pg_type t
        JOIN pg_namespace n ON n.oid = t.typnamespace
        WHERE n.nspname = 'public' AND t.typtype IN ('e', 'd', 'c')
          AND NOT EXISTS (SELECT 1 FROM pg_class c WHERE c.reltype = t.oid)
        ORDER BY 1""",
    "enum labels": """
        SELECT t.typname, e.enumsortorder, e.enumlabel FROM pg_enum e
        JOIN pg_type t ON t.oid = e.enumtypid
        JOIN pg_namespace n ON n.oid = t.typnamespace
        WHERE n.nspname = 'public' ORDER BY 1, 2""",
    "indexes": """
        SELECT tablename, indexname, indexdef FROM pg_indexes
        WHERE schemaname = 'public' ORDER BY 1, 2""",
    "constraints": """
        SELECT c.relname, k.conname, k.contype, pg_get_constraintdef(k.oid) AS definition,
               i.relname AS "index", k.condeferrable, k.condeferred
        FROM pg_constraint k
        JOIN pg_class c ON c.oid = k.conrelid
        JOIN pg_namespace n ON n.oid = c.relnamespace
        LEFT JOIN pg_class i ON i.oid = k.conindid
        WHERE n.nspname = 'public' ORDER BY 1, 2""",
    "table options": """
        SELECT c.relname, c.relpersistence, c.reloptions, c.relrowsecurity, c.relreplident
        FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = 'public' AND c.relkind = 'r' ORDER BY 1""",
}


def catalog(url: str) -> dict[str, list[tuple[Any, ...]]]:
    """What a schema comparison looks at, from the system catalogs of `url`'s public schema."""
    with psycopg.connect(url) as conn:
        return {part: conn.execute(query).fetchall() for part, query in CATALOG_QUERIES.items()}


def assert_same_catalog(prisma: str, worker: str) -> None:
    expected, actual = catalog(prisma), catalog(worker)
    for part in CATALOG_QUERIES:
        missing = [row for row in expected[part] if row not in actual[part]]
        extra = [row for row in actual[part] if row not in expected[part]]
        assert actual[part] == expected[part], (
            f"{part} differ from Prisma's: only in Prisma's {missing}, only in the worker's "
            f"{extra}")


def test_the_fixture_is_prismas_migration_of_the_shipped_model() -> None:
    text = PRISMA_SQL.read_text(encoding="utf-8")
    assert 'CREATE TABLE "Media"' in text
    assert 'CREATE INDEX "Media_status_idx" ON "Media"("status");' in text
    assert 'CREATE INDEX "Media_phash_id_idx" ON "Media"("phash", "id");' in text
    for quarter in range(4):
        assert (f'CREATE INDEX "Media_phash{quarter}_phash_idx" ON "Media"'
                f'("phash{quarter}", "phash");') in text
    assert 'CREATE TABLE "MediaEvent"' in text  # the outbox of status events


def test_migrate_creates_what_prisma_creates(new_database: Callable[[], str]) -> None:
    prisma, worker = new_database(), new_database()
    apply_prisma_sql(prisma)
    worker_migrate(worker)
    assert_same_catalog(prisma, worker)


def test_migrate_is_idempotent_and_leaves_prismas_table_as_it_is(
    new_database: Callable[[], str],
) -> None:
    prisma, worker = new_database(), new_database()
    apply_prisma_sql(prisma)
    reference = catalog(prisma)
    worker_migrate(prisma)  # the worker started against the API's table: nothing changes
    assert catalog(prisma) == reference
    worker_migrate(worker)
    worker_migrate(worker)  # it runs on every start
    assert_same_catalog(prisma, worker)


def test_migrate_brings_a_table_from_an_earlier_worker_to_prismas_shape(
    new_database: Callable[[], str],
) -> None:
    """Earlier `media-worker migrate` gave "updatedAt" a default that Prisma's table has not."""
    prisma, worker = new_database(), new_database()
    apply_prisma_sql(prisma)
    with psycopg.connect(worker, autocommit=True) as conn:
        conn.execute(PRISMA_SQL.read_text(encoding="utf-8"))
        conn.execute('ALTER TABLE "Media" ALTER COLUMN "updatedAt" SET DEFAULT CURRENT_TIMESTAMP')
    worker_migrate(worker)
    assert_same_catalog(prisma, worker)


def test_migrate_adds_the_phash_column_where_prisma_puts_it(
    new_database: Callable[[], str],
) -> None:
    """A table from before the perceptual hash's columns gains them (last) and their
    indexes."""
    prisma, worker = new_database(), new_database()
    apply_prisma_sql(prisma)
    older = without_the_quarters(PRISMA_SQL.read_text(encoding="utf-8"))
    older = (older.replace('    "phash" BIGINT,\n', "")
             .replace('CREATE INDEX "Media_phash_id_idx" ON "Media"("phash", "id");', ""))
    assert '"phash' not in older
    with psycopg.connect(worker, autocommit=True) as conn:
        conn.execute(older)
    worker_migrate(worker)
    assert_same_catalog(prisma, worker)


def test_migrate_adds_the_quarters_where_prisma_puts_them(
    new_database: Callable[[], str],
) -> None:
    """A table of the model that had "phash" but not its quarters gains them after it."""
    prisma, worker = new_database(), new_database()
    apply_prisma_sql(prisma)
    older = without_the_quarters(PRISMA_SQL.read_text(encoding="utf-8"))
    assert '"phash0"' not in older
    assert '"phash" BIGINT' in older
    with psycopg.connect(worker, autocommit=True) as conn:
        conn.execute(older)
    worker_migrate(worker)
    assert_same_catalog(prisma, worker)


def without_the_quarters(prisma_sql: str) -> str:
    """Prisma's SQL for the model before "phash0" to "phash3" and their indexes."""
    for quarter in range(4):
        prisma_sql = (prisma_sql.replace(f'    "phash{quarter}" INTEGER,\n', "")
                      .replace(f'CREATE INDEX "Media_phash{quarter}_phash_idx" ON "Media"'
                               f'("phash{quarter}", "phash");', ""))
    return prisma_sql


def test_a_configured_table_name_gets_prismas_names(new_database: Callable[[], str]) -> None:
    """MEDIA_TABLE=Upload: what Prisma makes of `model Upload` and `model UploadEvent` (names
    derived from the table)."""
    prisma, worker = new_database(), new_database()
    renamed = (PRISMA_SQL.read_text(encoding="utf-8")
               .replace('"Media"', '"Upload"').replace('"Media_', '"Upload_')
               .replace('"MediaEvent', '"UploadEvent'))
    with psycopg.connect(prisma, autocommit=True) as conn:
        conn.execute(renamed)
    worker_migrate(worker, table="Upload")
    assert_same_catalog(prisma, worker)
