#!/usr/bin/env node
// Generates the Prisma Client of deploy/prisma/media.prisma into tests/api/generated/client,
// offline, for producer.mjs. scripts/ensure-node-packages.sh runs it after `npm ci`.
//
// Two adjustments, both outside the model itself:
// - The generator block becomes `prisma-client-js` with a local output. The shipped file uses
//   Prisma 7's `prisma-client` generator, whose output is TypeScript only, and Node 20 cannot
//   run TypeScript without a build step; `prisma-client-js` emits JavaScript. Both are
//   engine-free in Prisma 7 (the query compiler as WebAssembly plus a driver adapter, here
//   @prisma/adapter-pg) and share the runtime of @prisma/client.
// - PRISMA_SCHEMA_ENGINE_BINARY points at a stub: the CLI resolves (and otherwise downloads)
//   its native schema engine before any command, generate included, though generate never
//   runs it; the download is impossible here.

import { execFileSync } from "node:child_process";
import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const require = createRequire(import.meta.url);
const shipped = readFileSync(join(here, "..", "..", "deploy", "prisma", "media.prisma"), "utf8");
const generator = /^generator client \{[^}]*\}/m;
if (!generator.test(shipped)) throw new Error("deploy/prisma/media.prisma: no `generator client`");
const schema = shipped.replace(generator,
  'generator client {\n  provider = "prisma-client-js"\n  output   = "./client"\n}');

const out = join(here, "generated");
rmSync(out, { recursive: true, force: true });
mkdirSync(out, { recursive: true });
writeFileSync(join(out, "schema.prisma"), schema);
const cli = join(dirname(require.resolve("prisma/package.json")), "build", "index.js");
execFileSync(process.execPath, [cli, "generate", "--schema", join(out, "schema.prisma")], {
  cwd: here,
  stdio: ["ignore", "ignore", "inherit"],
  env: {
    ...process.env,
    PRISMA_SCHEMA_ENGINE_BINARY: join(here, "schema-engine-unavailable"),
    CHECKPOINT_DISABLE: "1",
    PRISMA_HIDE_UPDATE_MESSAGE: "1",
  },
});
process.stdout.write("generated tests/api/generated/client\n");
