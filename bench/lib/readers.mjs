// Parent side of the fan-out readers: spreads `count` readers over `procs` child processes
// (clients/readers.mjs, each under a raised fd limit), waits for them to connect, to finish,
// and merges their reports.
import { join } from "node:path";
import { BENCH_DIR } from "./servers.mjs";
import { nodeWithUlimit } from "./spawn.mjs";
import { sleep } from "./stats.mjs";

function nextMessage(child, type, timeoutMs) {
  return new Promise((resolve, reject) => {
    const stop = (err, msg) => {
      clearTimeout(timer);
      child.off("message", onMsg);
      child.off("exit", onExit);
      if (err) reject(err);
      else resolve(msg);
    };
    const timer = setTimeout(
      () => stop(new Error(`reader process ${child.pid}: no "${type}" within ${timeoutMs} ms`)),
      timeoutMs,
    );
    const onMsg = (msg) => {
      if (msg.type === type) stop(null, msg);
    };
    const onExit = (code, signal) =>
      stop(new Error(`reader process ${child.pid} exited (${code ?? signal}) before "${type}"`));
    child.on("message", onMsg);
    child.once("exit", onExit);
  });
}

/**
 * Start the readers and resolve once every one has its response headers (or failed).
 * options: { url, count, procs, mode: "latency"|"count", maxSeq, batch, headers, connectTimeoutMs }
 * Returns { children, connected: {ok, failed, statuses, ms}, waitDone(ms), collect(), close() }.
 */
export async function startReaders({ procs = 1, count, ...options }) {
  const children = [];
  const dones = [];
  for (let p = 0; p < procs; p++) {
    const n = Math.floor(count / procs) + (p < count % procs ? 1 : 0);
    if (n === 0) continue;
    const child = nodeWithUlimit([join(BENCH_DIR, "clients", "readers.mjs")], {
      stdio: ["ignore", "inherit", "inherit", "ipc"],
    });
    children.push(child);
    dones.push(nextMessage(child, "done", 3600_000).catch(() => {}));
    child.send({ type: "start", count: n, ...options });
  }
  const group = {
    children,
    async waitDone(timeoutMs) {
      const timedOut = Symbol("timeout");
      const r = await Promise.race([Promise.all(dones), sleep(timeoutMs).then(() => timedOut)]);
      return r !== timedOut;
    },
    async collect() {
      const reports = await Promise.all(
        children.map((c) => {
          const p = nextMessage(c, "report", 30_000);
          c.send({ type: "report" });
          return p;
        }),
      );
      return mergeReports(reports);
    },
    async close() {
      for (const c of children) {
        if (c.exitCode !== null || c.signalCode !== null) continue;
        try {
          c.send({ type: "exit" });
        } catch {}
      }
      await Promise.race([Promise.all(children.map((c) => c.exitCode === null && onceExit(c))), sleep(3000)]);
      for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL");
    },
  };
  try {
    const ups = await Promise.all(
      children.map((c) => nextMessage(c, "connected", (options.connectTimeoutMs ?? 30_000) * 4 + 60_000)),
    );
    const statuses = {};
    for (const u of ups) for (const [k, v] of Object.entries(u.statuses)) statuses[k] = (statuses[k] ?? 0) + v;
    group.connected = {
      ok: ups.reduce((s, u) => s + u.ok, 0),
      failed: ups.reduce((s, u) => s + u.failed, 0),
      statuses,
      ms: Math.max(...ups.map((u) => u.ms)),
    };
  } catch (err) {
    await group.close();
    throw err;
  }
  return group;
}

const onceExit = (c) => new Promise((resolve) => c.once("exit", resolve));

/** Sum the counters; per SEQ, the worst latency over all readers and how many got it. */
function mergeReports(reports) {
  const sum = (k) => reports.reduce((s, r) => s + r[k], 0);
  const maxSeq = reports[0]?.maxLat.length ?? 0;
  const maxLat = new Float64Array(maxSeq).fill(-1);
  const cnt = new Uint32Array(maxSeq);
  for (const r of reports) {
    for (let i = 0; i < maxSeq; i++) {
      cnt[i] += r.cnt[i];
      if (r.maxLat[i] > maxLat[i]) maxLat[i] = r.maxLat[i];
    }
  }
  return {
    ok: sum("ok"),
    failed: sum("failed"),
    ended: sum("ended"),
    errored: sum("errored"),
    lines: sum("lines"),
    bytes: sum("bytes"),
    firstByteAt: Math.min(...reports.map((r) => r.firstByteAt || Number.POSITIVE_INFINITY)),
    lastByteAt: Math.max(...reports.map((r) => r.lastByteAt)),
    maxLat,
    cnt,
    perReader: reports.flatMap((r) => r.perReader ?? []),
  };
}
