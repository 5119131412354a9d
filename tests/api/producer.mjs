#!/usr/bin/env node
// Plays the NestJS API against media-worker, with the libraries such an API uses: the Prisma
// Client of deploy/prisma/media.prisma (Prisma 7, engine-free, through @prisma/adapter-pg) and
// the AWS SDK for JavaScript v3 (S3 and SQS).
//
//   node producer.mjs submit SPEC     store originals, insert PENDING rows, send the jobs
//   node producer.mjs readback SPEC   every row as JSON (thumbnails checked in storage), then
//                                     an update of each through Prisma
//
// SPEC is a JSON object, inline or as a file path:
//   { "databaseUrl": "postgresql://…",
//     "s3":  { "endpoint": "http://…", "region": "us-east-1", "accessKeyId": "…", "secretAccessKey": "…" },
//     "sqs": { …the same… },
//     "bucket": "media", "queueUrl": "http://…/queue", "uploadedBy": "user-42",
//     "files": [{ "path": "/abs/a.jpg", "key": "uploads/2026/été photo 1.jpg",
//                 "mimeType": "image/jpeg", "send": "single" | "batch" | "before-commit" }],
//     "commit": { "onSignal": true, "maxSeconds": 30 } }
//
// "single" jobs go out one SendMessage each (with message attributes), "batch" jobs in one
// SendMessageBatch, "before-commit" jobs are sent inside the interactive transaction that
// inserts their row: the row commits after "commit" arrives on stdin (with commit.onSignal) or
// after commit.maxSeconds (default 3), as an API that enqueues before its commit would.
// submit prints one JSON object per line: {"event":"sent-before-commit","id":…} when such a job
// is out and its row not yet committed, {"event":"committed","id":…}, and last
// {"event":"submitted","media":[{id,key,send,messageId}]}.
// Run scripts/ensure-node-packages.sh first (npm ci and the generated client).

import { randomBytes, randomUUID } from "node:crypto";
import { readFileSync, statSync } from "node:fs";
import { createRequire } from "node:module";
import { createInterface } from "node:readline";

import { HeadObjectCommand, PutObjectCommand, S3Client } from "@aws-sdk/client-s3";
import { SendMessageBatchCommand, SendMessageCommand, SQSClient } from "@aws-sdk/client-sqs";
import { PrismaPg } from "@prisma/adapter-pg";

const require = createRequire(import.meta.url);
const { PrismaClient } = require("./generated/client/index.js");

function loadSpec(argument) {
  if (!argument) throw new Error("a JSON spec (inline or a file path) is required");
  return JSON.parse(argument.trimStart().startsWith("{") ? argument : readFileSync(argument, "utf8"));
}

function awsConfig(service) {
  return {
    endpoint: service.endpoint,
    region: service.region ?? "us-east-1",
    credentials: { accessKeyId: service.accessKeyId ?? "test",
                   secretAccessKey: service.secretAccessKey ?? "test" },
  };
}

function prismaClient(spec) {
  return new PrismaClient({ adapter: new PrismaPg({ connectionString: spec.databaseUrl }) });
}

function emit(event) {
  process.stdout.write(`${JSON.stringify(event, jsonValue)}\n`);
}

/** BigInt (size) as a string: JSON has no 64-bit integers. Dates are ISO 8601 in UTC. */
function jsonValue(_key, value) {
  return typeof value === "bigint" ? value.toString() : value;
}

function jobBody(row) {
  return JSON.stringify({ jobId: randomUUID(), mediaId: row.id, type: "THUMBNAIL",
                          bucket: row.bucket, key: row.key, mimeType: row.mimeType });
}

/** What a traced NestJS service attaches to a message; the worker must ignore all of it. */
function messageAttributes(row, spec) {
  return {
    jobType: { DataType: "String", StringValue: "THUMBNAIL" },
    uploadedBy: { DataType: "String", StringValue: spec.uploadedBy ?? "api" },
    traceparent: { DataType: "String",
                   StringValue: `00-${randomBytes(16).toString("hex")}-${randomBytes(8).toString("hex")}-01` },
    schemaVersion: { DataType: "Number", StringValue: "1" },
    checksum: { DataType: "Binary", BinaryValue: randomBytes(8) },
    mediaId: { DataType: "String", StringValue: row.id },
  };
}

function rowData(file, spec) {
  const name = file.key.split("/").pop();
  return {
    bucket: spec.bucket,
    key: file.key,
    mimeType: file.mimeType ?? null,
    size: BigInt(statSync(file.path).size),
    metadata: { originalName: file.originalName ?? name, uploadedBy: spec.uploadedBy ?? "api" },
  };
}

/** Resolves after "commit" on stdin (with onSignal) or maxSeconds, whichever comes first. */
function commitSignal(commit = {}) {
  const seconds = commit.maxSeconds ?? 3;
  return new Promise((resolve) => {
    const timer = setTimeout(() => { lines?.close(); resolve("timeout"); }, seconds * 1000);
    const lines = commit.onSignal ? createInterface({ input: process.stdin }) : null;
    lines?.on("line", (line) => {
      if (line.trim() === "commit") { clearTimeout(timer); lines.close(); resolve("signal"); }
    });
  });
}

async function submit(spec) {
  const s3 = new S3Client({ ...awsConfig(spec.s3), forcePathStyle: true });
  const sqs = new SQSClient(awsConfig(spec.sqs));
  const prisma = prismaClient(spec);
  const submitted = [];
  try {
    for (const file of spec.files) {
      await s3.send(new PutObjectCommand({
        Bucket: spec.bucket, Key: file.key, Body: readFileSync(file.path),
        ContentType: file.mimeType ?? "application/octet-stream",
      }));
    }
    const later = spec.files.filter((file) => file.send === "before-commit");
    const now = spec.files.filter((file) => file.send !== "before-commit");
    const rows = [];
    for (const file of now) {
      rows.push({ file, row: await prisma.media.create({ data: rowData(file, spec) }) });
    }
    for (const { file, row } of rows.filter(({ file: f }) => f.send !== "batch")) {
      const sent = await sqs.send(new SendMessageCommand({
        QueueUrl: spec.queueUrl, MessageBody: jobBody(row),
        MessageAttributes: messageAttributes(row, spec),
      }));
      submitted.push({ id: row.id, key: file.key, send: file.send, messageId: sent.MessageId });
    }
    const batch = rows.filter(({ file }) => file.send === "batch");
    for (let start = 0; start < batch.length; start += 10) {
      const entries = batch.slice(start, start + 10).map(({ row }, index) => ({
        Id: `job-${start + index}`, MessageBody: jobBody(row),
        MessageAttributes: messageAttributes(row, spec),
      }));
      const sent = await sqs.send(new SendMessageBatchCommand({
        QueueUrl: spec.queueUrl, Entries: entries }));
      if (sent.Failed?.length) throw new Error(`SendMessageBatch failed: ${JSON.stringify(sent.Failed)}`);
      for (const entry of sent.Successful) {
        const { file, row } = batch[Number(entry.Id.slice(4))];
        submitted.push({ id: row.id, key: file.key, send: "batch", messageId: entry.MessageId });
      }
    }
    for (const file of later) {
      // The job goes out while the row is still uncommitted: a worker that receives it now
      // finds no row, and must look again rather than drop the job.
      const maxSeconds = spec.commit?.maxSeconds ?? 3;
      const row = await prisma.$transaction(async (tx) => {
        const created = await tx.media.create({ data: rowData(file, spec) });
        const sent = await sqs.send(new SendMessageCommand({
          QueueUrl: spec.queueUrl, MessageBody: jobBody(created),
          MessageAttributes: messageAttributes(created, spec),
        }));
        submitted.push({ id: created.id, key: file.key, send: file.send, messageId: sent.MessageId });
        emit({ event: "sent-before-commit", id: created.id, messageId: sent.MessageId });
        const how = await commitSignal(spec.commit);
        emit({ event: "committing", id: created.id, after: how });
        return created;
      }, { maxWait: 10_000, timeout: (maxSeconds + 30) * 1000 });
      emit({ event: "committed", id: row.id });
    }
    emit({ event: "submitted", media: submitted });
  } finally {
    await prisma.$disconnect();
    s3.destroy();
    sqs.destroy();
  }
}

async function readback(spec) {
  const s3 = new S3Client({ ...awsConfig(spec.s3), forcePathStyle: true });
  const prisma = prismaClient(spec);
  try {
    const rows = await prisma.media.findMany({ orderBy: [{ createdAt: "asc" }, { id: "asc" }] });
    for (const row of rows) {
      for (const thumb of Array.isArray(row.thumbnails) ? row.thumbnails : []) {
        try {
          const head = await s3.send(new HeadObjectCommand({ Bucket: thumb.bucket, Key: thumb.key }));
          thumb.stored = { bytes: head.ContentLength, contentType: head.ContentType };
        } catch (error) {
          thumb.stored = { error: error.name ?? String(error) };
        }
      }
    }
    const updates = [];
    for (const row of rows) {
      // What the API does with a finished row: its own change, through Prisma, on the row the
      // worker wrote (the JSON it merged, the enum, the timestamps all read back and written).
      try {
        const updated = await prisma.media.update({
          where: { id: row.id },
          data: { metadata: { ...(row.metadata ?? {}), reviewedBy: "api-harness" } },
        });
        updates.push({ id: row.id, ok: true, metadata: updated.metadata,
                       status: updated.status, updatedAt: updated.updatedAt });
      } catch (error) {
        updates.push({ id: row.id, ok: false, error: String(error.message ?? error) });
      }
    }
    emit({ now: new Date(), rows, updates });
  } finally {
    await prisma.$disconnect();
    s3.destroy();
  }
}

const commands = { submit, readback };
const [command, argument] = process.argv.slice(2);
if (!commands[command]) {
  process.stderr.write("usage: node producer.mjs submit|readback SPEC (JSON, inline or a file)\n");
  process.exit(2);
}
commands[command](loadSpec(argument)).then(() => process.exit(0), (error) => {
  process.stderr.write(`producer ${command}: ${error.stack ?? error}\n`);
  process.exit(1);
});
