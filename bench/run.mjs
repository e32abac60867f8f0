// The stream-db benchmark suite (issue 6). `node bench/run.mjs` runs every scenario,
// `node bench/run.mjs NAME [NAME...]` only those. Prints a table per scenario and writes
// bench/results/latest.json. Every server runs as its own process on 127.0.0.1 and is
// killed, and every temp dir deleted, at the end, on failure or on Ctrl-C.
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { cpus } from "node:os";
import { join } from "node:path";
import { cleanupAll } from "./lib/cleanup.mjs";
import { knob, knobsUsed } from "./lib/env.mjs";
import { BENCH_DIR, ROOT } from "./lib/servers.mjs";
import { sleep } from "./lib/stats.mjs";
import * as bigValues from "./scenarios/big-values.mjs";
import * as catchUp from "./scenarios/catch-up.mjs";
import * as compression from "./scenarios/compression.mjs";
import * as fanout from "./scenarios/fanout.mjs";
import * as fanoutSaturation from "./scenarios/fanout-saturation.mjs";
import * as fsyncModes from "./scenarios/fsync-modes.mjs";
import * as hotVersion from "./scenarios/hot-version.mjs";
import * as indexCost from "./scenarios/index-cost.mjs";
import * as ingest from "./scenarios/ingest.mjs";
import * as peer from "./scenarios/peer.mjs";
import * as query from "./scenarios/query.mjs";
import * as schemaCost from "./scenarios/schema-cost.mjs";
import * as smallAppends from "./scenarios/small-appends.mjs";
import * as sseFanout from "./scenarios/sse-fanout.mjs";
import * as startup from "./scenarios/startup.mjs";
import * as typedCatchUp from "./scenarios/typed-catch-up.mjs";
import * as wideFanout from "./scenarios/wide-fanout.mjs";

const SCENARIOS = [
  smallAppends,
  fsyncModes,
  hotVersion,
  ingest,
  bigValues,
  fanout,
  fanoutSaturation,
  wideFanout,
  sseFanout,
  catchUp,
  typedCatchUp,
  startup,
  peer,
  query,
  indexCost,
  schemaCost,
  compression,
];

function machine() {
  const cpu = /model name\s*:\s*(.*)/.exec(readFileSync("/proc/cpuinfo", "utf8"))?.[1] ?? cpus()[0]?.model;
  let nproc = cpus().length;
  try {
    nproc = Number(execFileSync("nproc", { encoding: "utf8" }).trim());
  } catch {}
  let commit = "unknown";
  try {
    commit = execFileSync("git", ["rev-parse", "--short", "HEAD"], { cwd: ROOT, encoding: "utf8" }).trim();
  } catch {}
  return { nproc, cpu, node: process.version, platform: `${process.platform} ${process.arch}`, commit };
}

const loadavg = () => readFileSync("/proc/loadavg", "utf8").split(" ").slice(0, 3).join(" ");

async function main() {
  const wanted = process.argv.slice(2);
  const unknown = wanted.filter((w) => !SCENARIOS.some((s) => s.name === w));
  if (unknown.length > 0) {
    console.error(`unknown scenario(s): ${unknown.join(", ")}\navailable: ${SCENARIOS.map((s) => s.name).join(", ")}`);
    process.exit(2);
  }
  if (!existsSync(join(ROOT, "dist", "server.js"))) {
    console.error("dist/server.js is missing: run `npm run build` first (npm run bench does)");
    process.exit(2);
  }
  const selected = wanted.length ? SCENARIOS.filter((s) => wanted.includes(s.name)) : SCENARIOS;
  const limitS = knob("BENCH_SCENARIO_TIMEOUT", 600);
  const info = machine();
  console.log(`stream-db bench: ${info.nproc} cores, ${info.cpu}, Node ${info.node}, commit ${info.commit}`);
  console.log(`load average before: ${loadavg()}`);
  console.log(`scenarios: ${selected.map((s) => s.name).join(", ")}`);
  const ctx = { results: {} };
  const out = { startedAt: new Date().toISOString(), machine: info, argv: process.argv.slice(2), scenarios: {} };
  let failures = 0;
  for (const scenario of selected) {
    const t0 = performance.now();
    console.log(`\n-- running ${scenario.name} ...`);
    try {
      let timer;
      const timeout = new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error(`timed out after ${limitS} s`)), limitS * 1000);
      });
      const report = await Promise.race([scenario.run(ctx), timeout]).finally(() => clearTimeout(timer));
      ctx.results[scenario.name] = report;
      report.print();
      out.scenarios[scenario.name] = { ...report.toJSON(), seconds: (performance.now() - t0) / 1000 };
    } catch (err) {
      failures++;
      cleanupAll(); // a failed scenario leaves nothing running for the next one
      console.log(`\n== ${scenario.name} ==\n  FAILED: ${err.stack ?? err}`);
      out.scenarios[scenario.name] = { scenario: scenario.name, error: String(err.stack ?? err) };
    }
    console.log(`   (${scenario.name}: ${((performance.now() - t0) / 1000).toFixed(1)} s; load average ${loadavg()})`);
    if (out.scenarios[scenario.name]) out.scenarios[scenario.name].loadavgAfter = loadavg();
    await sleep(500);
  }
  out.knobs = knobsUsed;
  out.finishedAt = new Date().toISOString();
  mkdirSync(join(BENCH_DIR, "results"), { recursive: true });
  const file = join(BENCH_DIR, "results", "latest.json");
  writeFileSync(file, `${JSON.stringify(out, null, 2)}\n`);
  console.log(`\nwrote ${file}`);
  cleanupAll();
  process.exit(failures ? 1 : 0);
}

main().catch((err) => {
  console.error(err);
  cleanupAll();
  process.exit(1);
});
