// Writers for the fan-out scenarios, over an undici Pool (keep-alive, 127.0.0.1 only).
// Each property carries the marker `~SEQ~SENT_MS~` that clients/readers.mjs looks for.
import { Pool } from "undici";
import { sleep, wallNow } from "./stats.mjs";

const PAD = "x".repeat(64);

/** One canonical property line carrying seq and its send time; about `bytes` long. */
export function markedProperty(seq, sentAt, bytes = 100) {
  const head = `<property for="t"><string>~${seq}~${sentAt.toFixed(3)}~`;
  const tail = "</string></property>\n";
  return head + PAD.slice(0, Math.max(0, bytes - head.length - tail.length)) + tail;
}

/** Every request is bounded: a server that stops answering fails it after 30 s. */
const TIMEOUTS = { headersTimeout: 30_000, bodyTimeout: 30_000 };

/**
 * POST one marked property every 1000/rate ms for durationMs, on schedule: a slow answer
 * does not delay the next send (up to maxInFlight outstanding; then the send waits). The
 * time in the marker is the SCHEDULED send time, so a send held back by a slow server
 * counts against the server (no coordinated omission).
 * Sending stops `graceMs` after the planned end even if the schedule is not done.
 * Resolves { sent, scheduled, ok, failed, statuses, firstSentAt, lastSentAt }.
 */
export async function pacedWriter({ origin, path, headers, rate, durationMs, maxInFlight = 64, graceMs = 5000 }) {
  const pool = new Pool(origin, { connections: 8, ...TIMEOUTS });
  const total = Math.floor((rate * durationMs) / 1000);
  const statuses = {};
  let inFlight = 0;
  let ok = 0;
  let failed = 0;
  const pending = new Set();
  const t0 = performance.now() + 20;
  let firstSentAt = 0;
  let lastSentAt = 0;
  const deadline = t0 + durationMs + graceMs;
  let sent = 0;
  for (let seq = 0; seq < total; seq++) {
    const due = t0 + (seq * 1000) / rate;
    if (performance.now() > deadline) break; // a server this far behind gets no more
    const wait = due - performance.now();
    if (wait > 0) await sleep(wait);
    while (inFlight >= maxInFlight) await Promise.race(pending);
    const sentAt = performance.timeOrigin + due;
    if (!firstSentAt) firstSentAt = sentAt;
    lastSentAt = sentAt;
    inFlight++;
    sent++;
    const p = pool
      .request({ path, method: "POST", headers, body: markedProperty(seq, sentAt) })
      .then(async (res) => {
        await res.body.text();
        statuses[res.statusCode] = (statuses[res.statusCode] ?? 0) + 1;
        if (res.statusCode < 300) ok++;
        else failed++;
      })
      .catch((err) => {
        statuses[err.code ?? "error"] = (statuses[err.code ?? "error"] ?? 0) + 1;
        failed++;
      })
      .finally(() => {
        inFlight--;
        pending.delete(p);
      });
    pending.add(p);
  }
  await Promise.all(pending);
  await pool.destroy();
  return { sent, scheduled: total, ok, failed, statuses, firstSentAt, lastSentAt };
}

/**
 * `loops` concurrent POST loops, each sending one marked property per request back to back
 * for durationMs. Resolves { ok, failed, statuses, startAt, endAt }.
 */
export async function saturatingWriter({ origin, path, headers, loops, durationMs }) {
  const pool = new Pool(origin, { connections: loops, ...TIMEOUTS });
  const statuses = {};
  let ok = 0;
  let failed = 0;
  let seq = 0;
  const startAt = wallNow();
  const deadline = performance.now() + durationMs;
  const loop = async () => {
    for (let i = 0; i < 10_000_000 && performance.now() < deadline; i++) {
      try {
        const res = await pool.request({ path, method: "POST", headers, body: markedProperty(seq++, wallNow()) });
        await res.body.text();
        statuses[res.statusCode] = (statuses[res.statusCode] ?? 0) + 1;
        if (res.statusCode < 300) ok++;
        else failed++;
      } catch (err) {
        statuses[err.code ?? "error"] = (statuses[err.code ?? "error"] ?? 0) + 1;
        failed++;
        await sleep(10);
      }
    }
  };
  await Promise.all(Array.from({ length: loops }, loop));
  const endAt = wallNow();
  await pool.destroy();
  return { ok, failed, statuses, startAt, endAt, sent: seq };
}

/** `count` POSTs of an unmarked property, `concurrency` at a time: wakes threads and JIT. */
export async function warmup({ origin, path, headers, count = 200, concurrency = 8 }) {
  const pool = new Pool(origin, { connections: concurrency, ...TIMEOUTS });
  const body = '<property for="w"><string>warm-up</string></property>\n';
  let next = 0;
  let failed = 0;
  const loop = async () => {
    while (next < count) {
      next++;
      const res = await pool.request({ path, method: "POST", headers, body });
      await res.body.text();
      if (res.statusCode >= 300) failed++;
    }
  };
  await Promise.all(Array.from({ length: concurrency }, loop));
  await pool.destroy();
  if (failed) throw new Error(`warm-up: ${failed} of ${count} POSTs to ${path} failed`);
}
