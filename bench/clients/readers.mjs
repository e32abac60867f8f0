// Fan-out reader client, run as a child process driven over IPC (see lib/readers.mjs).
// Opens `count` long-lived GETs with plain node:http and does no XML parsing:
//  - mode "count": counts newlines and bytes per response;
//  - mode "latency": also, for each complete line that carries a marker `~SEQ~SENT_MS~`,
//    takes the receive time minus SENT_MS and keeps, per SEQ, the worst latency over this
//    process's readers and how many readers got it.
import http from "node:http";
import zlib from "node:zlib";

const agent = new http.Agent({ keepAlive: false, maxSockets: Number.POSITIVE_INFINITY });
const reqs = [];
const stats = { ok: 0, failed: 0, ended: 0, errored: 0, bytes: 0, firstByteAt: 0, lastByteAt: 0 };
const statuses = {};
let cfg;
let maxLat;
let cnt;
const readers = [];
let doneSent = false;

const now = () => performance.timeOrigin + performance.now();

function checkDone() {
  if (!doneSent && stats.ended + stats.errored + stats.failed >= cfg.count) {
    doneSent = true;
    process.send({ type: "done" });
  }
}

function onLine(line, at) {
  const a = line.indexOf("~");
  if (a < 0) return;
  const b = line.indexOf("~", a + 1);
  const c = line.indexOf("~", b + 1);
  if (b < 0 || c < 0) return;
  const seq = Number(line.slice(a + 1, b));
  const lat = at - Number(line.slice(b + 1, c));
  if (!(seq >= 0 && seq < cfg.maxSeq)) return;
  cnt[seq]++;
  if (lat > maxLat[seq]) maxLat[seq] = lat;
}

function open(index) {
  return new Promise((resolve) => {
    const mine = { bytes: 0, lines: 0, startAt: now(), firstAt: 0, lastAt: 0, ended: false, errored: false };
    readers[index] = mine;
    const fail = () => {
      if (mine.ended || mine.errored) return;
      mine.errored = true;
      stats.errored++;
      checkDone();
    };
    let carry = "";
    let settled = false;
    const settle = (ok, status) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      statuses[status] = (statuses[status] ?? 0) + 1;
      if (ok) stats.ok++;
      else stats.failed++;
      resolve();
    };
    const req = http.get(cfg.url, { agent, headers: cfg.headers }, (res) => {
      if (res.statusCode !== 200) {
        res.resume();
        settle(false, res.statusCode);
        checkDone();
        return;
      }
      settle(true, 200);
      // A read asked with Accept-Encoding: the lines are in the decoded stream.
      const coding = res.headers["content-encoding"];
      const body =
        coding === "gzip"
          ? res.pipe(zlib.createGunzip())
          : coding === "br"
            ? res.pipe(zlib.createBrotliDecompress())
            : res;
      body.on("data", (chunk) => {
        const at = now();
        if (!stats.firstByteAt) stats.firstByteAt = at;
        if (!mine.firstAt) mine.firstAt = at;
        stats.lastByteAt = at;
        mine.lastAt = at;
        stats.bytes += chunk.length;
        mine.bytes += chunk.length;
        let start = 0;
        let nl = chunk.indexOf(10);
        if (cfg.mode !== "latency") {
          while (nl !== -1) {
            mine.lines++;
            nl = chunk.indexOf(10, nl + 1);
          }
          return;
        }
        while (nl !== -1) {
          mine.lines++;
          // Only a line with a marker is looked at (an SSE event has three without).
          const tilde = chunk.indexOf(126, start);
          if (carry !== "" || (tilde >= 0 && tilde < nl)) {
            const part = chunk.latin1Slice(start, nl);
            onLine(carry ? carry + part : part, at);
          }
          carry = "";
          start = nl + 1;
          nl = chunk.indexOf(10, start);
        }
        if (start < chunk.length) carry += chunk.latin1Slice(start);
      });
      body.once("end", () => {
        if (mine.errored) return;
        mine.ended = true;
        stats.ended++;
        checkDone();
      });
      res.once("error", fail);
      res.once("aborted", fail);
    });
    reqs.push(req);
    req.once("error", (err) => {
      if (!settled) {
        settle(false, err.code ?? "error");
        checkDone();
      } else fail();
    });
    const timer = setTimeout(() => {
      if (!settled) {
        settle(false, "timeout");
        req.destroy();
      }
    }, cfg.connectTimeoutMs);
  });
}

async function start(msg) {
  cfg = { batch: 100, connectTimeoutMs: 30_000, headers: {}, maxSeq: 0, ...msg };
  maxLat = new Float64Array(cfg.maxSeq).fill(-1);
  cnt = new Uint32Array(cfg.maxSeq);
  const t0 = now();
  for (let i = 0; i < cfg.count; i += cfg.batch) {
    const batch = [];
    for (let j = i; j < Math.min(cfg.count, i + cfg.batch); j++) batch.push(open(j));
    await Promise.all(batch);
  }
  process.send({ type: "connected", ok: stats.ok, failed: stats.failed, statuses, ms: now() - t0 });
  checkDone();
}

function report() {
  let lines = 0;
  for (const r of readers) lines += r.lines;
  return {
    ...stats,
    lines,
    statuses,
    maxLat: Array.from(maxLat),
    cnt: Array.from(cnt),
    perReader: cfg.count <= 64 ? readers : undefined,
  };
}

process.on("message", (msg) => {
  if (msg.type === "start") start(msg);
  else if (msg.type === "report") process.send({ type: "report", ...report() });
  else if (msg.type === "exit") {
    for (const r of reqs) r.destroy();
    process.exit(0);
  }
});
process.on("disconnect", () => process.exit(0));
