// HTTP client helpers for the load side: streaming chunked POSTs (node:http, with
// backpressure) and one-shot requests (undici). All targets are 127.0.0.1.
import { once } from "node:events";
import http from "node:http";
import { request } from "undici";

/** One-shot request, bounded by `timeoutMs`; resolves { status, body (text), headers }. */
export async function call(url, { method = "GET", headers, body, timeoutMs = 30_000 } = {}) {
  const res = await request(url, { method, headers, body, signal: AbortSignal.timeout(timeoutMs) });
  return { status: res.statusCode, headers: res.headers, body: await res.body.text() };
}

/** Thrown when a server stops taking a request body (or answering) for `stallMs`. */
export class StallError extends Error {
  constructor(bytes, stallMs) {
    super(`no progress for ${stallMs} ms after sending ${bytes} bytes of the body`);
    this.bytes = bytes;
    this.stallMs = stallMs;
  }
}

/**
 * POST with chunked transfer encoding, writing each Buffer of `chunks` (any iterable) as it
 * is produced and waiting for 'drain' when the socket is full. Nothing is held beyond one chunk.
 * Resolves { status, body, bytes, ms } once the answer is complete; rejects with StallError
 * (and destroys the request) if nothing moves for `stallMs`.
 */
export function postStream(url, chunks, headers = {}, { stallMs = 15_000 } = {}) {
  const t0 = performance.now();
  const u = new URL(url);
  const req = http.request({
    host: u.hostname,
    port: u.port,
    path: u.pathname + u.search,
    method: "POST",
    agent: false,
    headers: { ...headers, "transfer-encoding": "chunked" },
  });
  let answered = false;
  let bytes = 0;
  let progressAt = performance.now();
  const answer = new Promise((resolve, reject) => {
    const watchdog = setInterval(() => {
      if (performance.now() - progressAt < stallMs) return;
      clearInterval(watchdog);
      const err = new StallError(bytes, stallMs);
      req.destroy(err);
      reject(err);
    }, 250);
    req.once("close", () => clearInterval(watchdog));
    req.once("error", reject);
    req.on("drain", () => {
      progressAt = performance.now();
    });
    req.once("response", (res) => {
      const parts = [];
      res.on("data", (c) => {
        progressAt = performance.now();
        parts.push(c);
      });
      res.once("end", () => {
        answered = true;
        resolve({ status: res.statusCode, body: Buffer.concat(parts).toString() });
      });
      res.once("error", reject);
    });
  });
  const send = (async () => {
    for (const chunk of chunks) {
      if (answered || req.destroyed || req.writableEnded) break;
      bytes += chunk.length;
      if (req.write(chunk)) progressAt = performance.now();
      else await Promise.race([once(req, "drain"), answer]);
    }
    req.end();
    return bytes;
  })();
  return Promise.all([send, answer]).then(([bytes, res]) => ({ ...res, bytes, ms: performance.now() - t0 }));
}

/**
 * Lines of exactly `lineBytes` bytes, `<property for="p"><string>...</string></property>\n`,
 * grouped into blocks of about `blockBytes`; `variants` different blocks are built once and
 * reused, so a body of any size is generated on the fly without holding it.
 */
export function propertyBlocks({ lineBytes = 100, blockBytes = 64 * 1024, variants = 8, name = "p" }) {
  const head = `<property for="${name}"><string>`;
  const tail = "</string></property>\n";
  const fill = lineBytes - head.length - tail.length;
  if (fill < 12) throw new Error(`lineBytes ${lineBytes} is too small`);
  const perBlock = Math.max(1, Math.floor(blockBytes / lineBytes));
  const blocks = [];
  for (let v = 0; v < variants; v++) {
    let s = "";
    for (let i = 0; i < perBlock; i++) {
      const tag = `v${v}-${i}-`;
      s +=
        head +
        tag +
        "abcdefghijklmnopqrstuvwxyz0123456789".repeat(Math.ceil(fill / 36)).slice(0, fill - tag.length) +
        tail;
    }
    blocks.push(Buffer.from(s, "latin1"));
  }
  return { blocks, linesPerBlock: perBlock, blockBytes: perBlock * lineBytes };
}

/** Yields blocks from `propertyBlocks` until `count` blocks were yielded. */
export function* repeatBlocks({ blocks }, count) {
  for (let i = 0; i < count; i++) yield blocks[i % blocks.length];
}

/**
 * Builds one sealed version of about `sizeMiB` MiB of `lineBytes`-byte properties with
 * chunked POSTs of `postKiB` KiB, two at a time. Returns { posts, props, ms }.
 */
export async function buildSealedVersion(server, path, { sizeMiB, postKiB, lineBytes }) {
  const xml = { "content-type": "application/xml" };
  const gen = propertyBlocks({ lineBytes, blockBytes: 64 * 1024 });
  const blocksPerPost = Math.max(1, Math.floor((postKiB * 1024) / gen.blockBytes));
  const posts = Math.ceil((sizeMiB * 1024 * 1024) / (blocksPerPost * gen.blockBytes));
  const t0 = performance.now();
  let next = 0;
  const loop = async () => {
    while (next < posts) {
      next++;
      const r = await postStream(server.url + path, repeatBlocks(gen, blocksPerPost), xml, { stallMs: 15_000 });
      if (r.status !== 200) throw new Error(`building: POST answered ${r.status}: ${r.body.slice(0, 200)}`);
    }
  };
  await Promise.all([loop(), loop()]);
  const sealed = await call(`${server.url}${path}?seal=true`, { method: "POST", headers: xml, body: "" });
  if (sealed.status !== 200) throw new Error(`sealing: ${sealed.status} ${sealed.body}`);
  return { posts, props: posts * blocksPerPost * gen.linesPerBlock, ms: performance.now() - t0 };
}
