// startup: a data dir of 10,000 versions totalling 1 GiB, written directly as files: each
// `s-N_1.data` is `<item>\n` + ~1 KiB canonical string properties (+ `</item>\n` for the 80%
// that are sealed); 10% (half of them sealed, half open) have no .meta file (the server must rebuild it), the rest a correct
// one. Measured: time from spawn to the "listening" line and to the first successful read
// (a whole sealed version, ?follow=false), then the same for a restart of the same dir.
// Reference: the node:http POST reference's own spawn-to-listening / first-answer times (the
// floor of starting Node at all).
// Success: stream-db ready (first successful read) <= 3 s after spawn.
// Knobs: BENCH_STARTUP_VERSIONS (10000), BENCH_STARTUP_MB (MiB in all, 1024).
import { readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { removeDir, tempDir } from "../lib/cleanup.mjs";
import { knob } from "../lib/env.mjs";
import { call } from "../lib/http.mjs";
import { cpuMs, rssBytes } from "../lib/proc.mjs";
import { Report } from "../lib/report.mjs";
import { withServer } from "../lib/scenario.mjs";
import { startReference, startStreamDb } from "../lib/servers.mjs";
import { fmt, fmtRatio, MiB, mib, sleep } from "../lib/stats.mjs";

export const name = "startup";
const LINE = 1024;

function generate(dir, versions, totalBytes) {
  const head = '<property for="p"><string>';
  const tail = "</string></property>\n";
  const lines = Math.max(1, Math.floor((totalBytes / versions - 15) / LINE));
  const line = head + "y".repeat(LINE - head.length - tail.length) + tail;
  const open = Buffer.from(`<item>\n${line.repeat(lines)}`);
  const sealed = Buffer.concat([open, Buffer.from("</item>\n")]);
  const entries = Array.from({ length: lines }, (_, i) => ({ type: "string", offset: 7 + i * LINE, length: LINE - 1 }));
  const now = new Date().toISOString();
  let bytes = 0;
  for (let i = 0; i < versions; i++) {
    const isSealed = i % 5 !== 0;
    const data = isSealed ? sealed : open;
    writeFileSync(join(dir, `s-${i}_1.data`), data);
    bytes += data.length;
    if (i % 20 === 3 || i % 20 === 5) continue; // no .meta (half sealed, half open): rebuilt by the server
    const meta = { item_id: `s-${i}`, version: 1, created_at: now, updated_at: now, size: data.length };
    Object.assign(meta, { sealed: isSealed, property_count: lines, properties: { p: entries } });
    writeFileSync(join(dir, `s-${i}_1.meta`), JSON.stringify(meta));
  }
  return { bytes, sealedLength: sealed.length };
}

/** Poll a read until it answers 200 with `expect` bytes; bounded by `timeoutMs`. */
async function firstRead(url, expect, timeoutMs = 60_000) {
  const deadline = performance.now() + timeoutMs;
  let last = "";
  for (let i = 0; i < 10_000 && performance.now() < deadline; i++) {
    try {
      const r = await call(url);
      if (r.status === 200 && Buffer.byteLength(r.body) === expect) return performance.now();
      last = `${r.status} ${r.body.slice(0, 200)}`;
    } catch (err) {
      last = String(err.message);
    }
    await sleep(10);
  }
  throw new Error(`no successful read of ${url} within ${timeoutMs} ms; last: ${last}`);
}

const countMetas = (dir) => readdirSync(dir).filter((f) => f.endsWith(".meta")).length;

/** Spawn to "listening", to the first whole read, and (with `metas`) until `metas` .meta files exist. */
async function timeStart(report, starting, readPath, expect, { dir, metas } = {}) {
  const t0 = performance.now();
  return withServer(
    report,
    starting,
    async (s) => {
      const listening = performance.now() - t0;
      const readAt = await firstRead(s.url + readPath, expect);
      const out = { listeningMs: listening, readMs: readAt - t0, cpuMs: cpuMs(s.pid), rss: rssBytes(s.pid) };
      out.metasAtRead = dir ? countMetas(dir) : Number.NaN;
      out.allMetasMs = Number.NaN;
      for (let i = 0; dir && i < 600; i++) {
        if (countMetas(dir) >= metas) {
          out.allMetasMs = performance.now() - t0;
          break;
        }
        await sleep(100);
      }
      return out;
    },
    { keepDataDir: true },
  );
}

export async function run() {
  const versions = knob("BENCH_STARTUP_VERSIONS", 10000);
  const totalMiB = knob("BENCH_STARTUP_MB", 1024);
  const report = new Report(name, "stream-db answers its first read <= 3 s after spawn");
  const dir = tempDir("startup");
  try {
    const t0 = performance.now();
    const gen = generate(dir, versions, totalMiB * MiB);
    const genMs = performance.now() - t0;
    const readPath = "/read-item-stream/s-1/1?follow=false";
    const opts = { dir, metas: versions };
    const cold = await timeStart(
      report,
      startStreamDb({ fsync: "batch", dataDir: dir }),
      readPath,
      gen.sealedLength,
      opts,
    );
    const metas = countMetas(dir);
    const warm = await timeStart(
      report,
      startStreamDb({ fsync: "batch", dataDir: dir }),
      readPath,
      gen.sealedLength,
      opts,
    );
    const ref = await timeStart(report, startReference("post"), "/", Buffer.byteLength('{"ok":true,"bytes":0}'));
    report.table([
      "ready vs ref",
      "server",
      "to listening ms",
      "to first read ms",
      "CPU ms then",
      "RSS MiB then",
      ".meta files then",
      "all .meta present ms",
    ]);
    const row = (ratioText, label, m) => [
      ratioText,
      label,
      fmt(m.listeningMs, 0),
      fmt(m.readMs, 0),
      fmt(m.cpuMs, 0),
      mib(m.rss),
      Number.isNaN(m.metasAtRead) ? "" : m.metasAtRead,
      Number.isNaN(m.allMetasMs) ? "" : fmt(m.allMetasMs, 0),
    ];
    report.row(row(fmtRatio(cold.readMs / ref.readMs), "stream-db, first start (10% .meta missing)", cold));
    report.row(row(fmtRatio(warm.readMs / ref.readMs), "stream-db, restart (all .meta present)", warm));
    report.row(row("1.00x (ref)", "node:http POST reference (empty)", ref));
    report.target(
      "first read <= 3 s after spawn (first start)",
      `${fmt(cold.readMs / 1000, 2)} s`,
      cold.readMs <= 3000,
    );
    report.target("first read <= 3 s after spawn (restart)", `${fmt(warm.readMs / 1000, 2)} s`, warm.readMs <= 3000);
    if (Number.isNaN(cold.allMetasMs)) report.note(`not every .meta was rebuilt within 60 s of the first start`);
    report.note(
      `${versions} versions, ${mib(gen.bytes, 0)} MiB of data files generated in ${fmt(genMs / 1000, 1)} s ` +
        `(page cache warm); .meta files after the first start and its SIGTERM: ${metas} of ${versions}; ratio = time / reference time (lower is better)`,
    );
    report.raw = { settings: { versions, totalMiB }, genMs, metasAfterFirstStart: metas, cold, warm, ref };
    return report;
  } finally {
    removeDir(dir);
  }
}
