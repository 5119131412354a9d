#!/usr/bin/env node
// The SQL that Prisma applies for deploy/prisma/media.prisma on an empty PostgreSQL database:
// what `prisma migrate diff --from-empty --to-schema deploy/prisma/media.prisma --script` (and
// the first `prisma migrate dev`) print. Written to fixtures/prisma-migration.sql, which
// tests/integration/test_prisma_schema.py compares with `media-worker migrate`.
//
//   node tests/api/prisma-sql.mjs           # regenerate the fixture
//   node tests/api/prisma-sql.mjs --check   # exit 1 if the fixture is not what Prisma makes
//   DATABASE_URL=postgresql://…             # default postgresql://postgres@127.0.0.1:5432/postgres
//
// Why not the Prisma CLI: every command of prisma 7.10 first fetches its native schema-engine
// binary, which these machines cannot download. The same engine is published as WebAssembly
// and driven through a JavaScript driver adapter (@prisma/adapter-pg): the CLI package itself
// ships it (prisma/build/schema_engine_bg.wasm, built from the engines commit the CLI pins), and
// @prisma/schema-engine-wasm publishes a build with its JavaScript bindings. This script runs
// the CLI's own engine through the published bindings (their imports are checked to be the
// same), runs the published engine as well, and refuses to write anything unless both agree.
// The engine connects to the database when it starts (through the adapter) but reads nothing
// for a diff from empty: the database only has to be reachable.

import { readFileSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join, relative } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

import { PrismaPg } from "@prisma/adapter-pg";
import { bindMigrationAwareSqlAdapterFactory } from "@prisma/driver-adapter-utils";

const here = dirname(fileURLToPath(import.meta.url));
const repo = join(here, "..", "..");
const require = createRequire(import.meta.url);
const SCHEMA = join(repo, "deploy", "prisma", "media.prisma");
const FIXTURE = join(here, "fixtures", "prisma-migration.sql");
const DATABASE_URL = process.env.DATABASE_URL || "postgresql://postgres@127.0.0.1:5432/postgres";

const cliWasm = join(dirname(require.resolve("prisma/package.json")), "build",
  "schema_engine_bg.wasm");
const packageDir = dirname(require.resolve("@prisma/schema-engine-wasm"));
const packageWasm = join(packageDir, "schema_engine_bg.wasm");

/** A fresh instance of the bindings of @prisma/schema-engine-wasm bound to `wasmPath`. */
async function loadEngine(wasmPath) {
  // A new module instance each time (query string): the bindings keep the instance in a
  // module-level variable.
  const bindings = pathToFileURL(join(packageDir, "schema_engine_bg.js"));
  bindings.searchParams.set("engine", wasmPath);
  const glue = await import(bindings.href);
  const module = new WebAssembly.Module(readFileSync(wasmPath));
  const missing = WebAssembly.Module.imports(module)
    .filter(({ module: from, name }) => from !== "./schema_engine_bg.js" || !(name in glue))
    .map(({ module: from, name }) => `${from}:${name}`);
  if (missing.length) {
    throw new Error(`${relative(repo, wasmPath)} does not fit the bindings of ` +
      `@prisma/schema-engine-wasm (missing ${missing.slice(0, 3).join(", ")}…)`);
  }
  const instance = new WebAssembly.Instance(module, { "./schema_engine_bg.js": glue });
  glue.__wbg_set_wasm(instance.exports);
  instance.exports.__wbindgen_start();
  return glue;
}

/** The `migrate diff --from-empty --to-schema SCHEMA --script` output of one engine build. */
async function diffFromEmpty(wasmPath, schema) {
  const glue = await loadEngine(wasmPath);
  const files = [{ path: "media.prisma", content: schema }];
  const adapter = bindMigrationAwareSqlAdapterFactory(
    new PrismaPg({ connectionString: DATABASE_URL }));
  const logs = [];
  const engine = await glue.SchemaEngine.new(
    { datamodels: files.map(({ path, content }) => [path, content]) },
    (line) => logs.push(line), adapter);
  try {
    const result = await engine.diff({
      from: { tag: "empty" },
      to: { tag: "schemaDatamodel", files },
      script: true,
      exitCode: null,
      filters: { externalTables: [], externalEnums: [] },
    });
    if (!result.stdout) throw new Error(`the engine printed nothing: ${logs.join("\n")}`);
    return { version: glue.version(), sql: result.stdout };
  } finally {
    engine.free();
  }
}

async function main() {
  const check = process.argv.includes("--check");
  const schema = readFileSync(SCHEMA, "utf8");
  const cliVersion = require("prisma/package.json").version;
  const packageVersion = JSON.parse(readFileSync(join(packageDir, "package.json"), "utf8")).version;
  const fromCli = await diffFromEmpty(cliWasm, schema);
  const fromPackage = await diffFromEmpty(packageWasm, schema);
  if (fromCli.sql !== fromPackage.sql) {
    throw new Error(`the schema engine of prisma ${cliVersion} (${fromCli.version}) and ` +
      `@prisma/schema-engine-wasm ${packageVersion} disagree:\n` +
      `${fromCli.sql}\n---\n${fromPackage.sql}`);
  }
  const text = [
    "-- The SQL Prisma applies for deploy/prisma/media.prisma on an empty PostgreSQL database",
    "-- (`prisma migrate diff --from-empty --to-schema deploy/prisma/media.prisma --script`).",
    `-- Schema engine ${fromCli.version} (prisma ${cliVersion}), same output from`,
    `-- @prisma/schema-engine-wasm ${packageVersion}.`,
    "-- Generated: do not edit. Regenerate with `node tests/api/prisma-sql.mjs` (see",
    "-- tests/api/README.md); tests/integration/test_prisma_schema.py compares it with",
    "-- `media-worker migrate`.",
    "",
    fromCli.sql,
  ].join("\n");
  if (check) {
    let current = "";
    try { current = readFileSync(FIXTURE, "utf8"); } catch { /* absent: differs */ }
    if (current !== text) {
      process.stderr.write(`${relative(repo, FIXTURE)} is out of date: run ` +
        "node tests/api/prisma-sql.mjs\n");
      process.exit(1);
    }
    process.stdout.write(`${relative(repo, FIXTURE)} is what Prisma generates\n`);
    return;
  }
  writeFileSync(FIXTURE, text);
  process.stdout.write(`wrote ${relative(repo, FIXTURE)}\n`);
}

main().then(() => process.exit(0), (error) => {
  process.stderr.write(`prisma-sql: ${error.message ?? error}\n`);
  process.exit(1);
});
