// query: 100,000 item versions of 10 properties each (1,000,000 properties, built with
// concurrent POSTs), then, against one server:
//  - a point query, `city = "Oslo"` (0.1 % of the versions), and a range query,
//    `age >= 30 AND age < 31` (1 %), each BENCH_QUERY_RUNS times with limit=10000: p50/p99;
//  - the same two as full scans (`NOT (NOT ...)`, which no index lookup can serve: every
//    version is read and checked) in the same run;
//  - start-up: with the intact index, with --index false, and with --reindex (the rebuild's
//    rate in properties/s), each time to the first answered query.
// Success: indexed p50 under 5 ms and >= 100x faster than the full scan; start-up with an
// intact index within 1.5x of start-up without one.
// Knobs: BENCH_QUERY_VERSIONS (100000), BENCH_QUERY_RUNS (50).
import { Pool } from "undici";
import { removeDir } from "../lib/cleanup.mjs";
import { knob } from "../lib/env.mjs";
import { call } from "../lib/http.mjs";
import { Report } from "../lib/report.mjs";
import { startStreamDb } from "../lib/servers.mjs";
import { fmt, fmtRatio, summarize } from "../lib/stats.mjs";

export const name = "query";

const XML = { "content-type": "application/xml" };
const CITIES = ["Paris", "Rome", "Bergen", "Lima", "Kyoto"];

function body(i) {
  // 1 in 1,000 lives in Oslo; ages spread 0-99, so one year holds 1 % of the versions.
  const city = i % 1000 === 7 ? "Oslo" : CITIES[i % CITIES.length];
  const p = (n, t, v) => `<property for="${n}"><${t}>${v}</${t}></property>`;
  return [
    p("city", "string", city),
    p("age", "number", String((i * 37) % 100)),
    p("name", "string", `user ${i}`),
    p("active", "boolean", i % 3 ? "true" : "false"),
    p("score", "number", `${i % 997}.${i % 10}`),
    p("joined", "datetime", `2024-0${1 + (i % 9)}-1${i % 10}T10:30:00Z`),
    p("team", "string", `t${i % 50}`),
    p("level", "number", String(i % 7)),
    p("email", "string", `u${i}@example.com`),
    p("note", "string", "x".repeat(20)),
  ].join("");
}

async function build(url, versions) {
  const pool = new Pool(url, { connections: 16 });
  let next = 0;
  const t0 = performance.now();
  const loop = async () => {
    while (next < versions) {
      const i = next++;
      const res = await pool.request({
        path: `/write-item-stream/u${String(i).padStart(6, "0")}/1`,
        method: "POST",
        headers: XML,
        body: body(i),
      });
      await res.body.text();
      if (res.statusCode !== 200) throw new Error(`building: ${res.statusCode}`);
    }
  };
  await Promise.all(Array.from({ length: 16 }, loop));
  await pool.close();
  return performance.now() - t0;
}

async function timeQuery(url, where, runs) {
  const lat = [];
  let count = 0;
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    // The first one waits for the index to hold every write answered before it.
    const r = await call(`${url}/query?where=${encodeURIComponent(where)}&limit=10000`, { timeoutMs: 600_000 });
    lat.push(performance.now() - t0);
    if (r.status !== 200) throw new Error(`query ${where}: ${r.status} ${r.body.slice(0, 200)}`);
    count = JSON.parse(r.body).items.length;
  }
  return { ...summarize(lat), count };
}

/** Spawn on `dataDir` with `args`; ms from spawn to the first answered query. */
async function startup(dataDir, args, where) {
  const t0 = performance.now();
  const s = await startStreamDb({ dataDir, args });
  let ms;
  for (;;) {
    const r = await call(`${s.url}/query?where=${encodeURIComponent(where)}&limit=1`, { timeoutMs: 600_000 });
    if (r.status === 200 || r.status === 404) {
      ms = performance.now() - t0;
      break;
    }
  }
  await s.stop();
  return ms;
}

export async function run() {
  const versions = knob("BENCH_QUERY_VERSIONS", 100_000);
  const runs = knob("BENCH_QUERY_RUNS", 50);
  const report = new Report(
    name,
    "indexed query p50 < 5 ms and >= 100x a full scan; start-up with index <= 1.5x without",
  );
  const s = await startStreamDb({});
  const dataDir = s.dataDir;
  try {
    const buildMs = await build(s.url, versions);
    const queries = [
      ["point", 'city = "Oslo"'],
      ["range", "age >= 30 AND age < 31"],
    ];
    // Warm: the first query also waits for the index to catch up with the build.
    const caughtUp = performance.now();
    await timeQuery(s.url, queries[0][1], 1);
    const lagMs = performance.now() - caughtUp;
    const rows = [];
    for (const [label, where] of queries) {
      const indexed = await timeQuery(s.url, where, runs);
      const scan = await timeQuery(s.url, `NOT (NOT (${where}))`, Math.max(3, Math.floor(runs / 10)));
      rows.push({ label, where, indexed, scan });
    }
    await s.stop();
    const withIndex = await startup(dataDir, [], queries[0][1]);
    const without = await startup(dataDir, ["--index", "false"], queries[0][1]);
    const rebuild = await startup(dataDir, ["--reindex", "true"], queries[0][1]);
    report.table([
      "query",
      "where",
      "matches",
      "indexed p50 ms",
      "indexed p99 ms",
      "full scan p50 ms",
      "scan / indexed",
    ]);
    for (const r of rows) {
      const x = r.scan.p50 / r.indexed.p50;
      report.row([
        r.label,
        r.where,
        String(r.indexed.count),
        fmt(r.indexed.p50, 2),
        fmt(r.indexed.p99, 2),
        fmt(r.scan.p50, 1),
        fmtRatio(x),
      ]);
      report.target(
        `${r.label}: p50 < 5 ms`,
        `${fmt(r.indexed.p50, 2)} ms`,
        r.indexed.p50 < 5 && r.indexed.count === r.scan.count,
      );
      report.target(`${r.label}: >= 100x the full scan`, fmtRatio(x), x >= 100);
    }
    const props = versions * 10;
    report.note(
      `built ${versions} versions, ${props} properties in ${fmt(buildMs / 1000, 1)} s; ` +
        `the index had all of it ${fmt(lagMs / 1000, 1)} s after the last write's answer`,
    );
    report.note(
      `start-up to the first answered query: intact index ${fmt(withIndex, 0)} ms, --index false ${fmt(without, 0)} ms, ` +
        `--reindex ${fmt(rebuild, 0)} ms (${fmt(props / (rebuild / 1000), 0)} properties/s rebuilt)`,
    );
    report.target(
      "start-up with an intact index <= 1.5x without one",
      fmtRatio(withIndex / without),
      withIndex <= 1.5 * without,
    );
    report.raw = { versions, runs, buildMs, lagMs, rows, withIndex, without, rebuild };
    return report;
  } finally {
    await s.stop().catch(() => undefined);
    removeDir(dataDir);
  }
}
