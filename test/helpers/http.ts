import { request as httpRequest } from "node:http";
import { request } from "undici";

export const XML = { "content-type": "application/xml" };

export interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
  // biome-ignore lint/suspicious/noExplicitAny: tests read arbitrary JSON answers
  json: () => any;
}

/** POST a body (string, or chunks sent one by one with a pause between). */
export async function post(
  url: string,
  body: string | Buffer | Iterable<Buffer | string> | AsyncIterable<Buffer | string>,
  headers: Record<string, string> = XML,
): Promise<Answer> {
  const res = await request(url, { method: "POST", headers, body: body as string });
  const text = await res.body.text();
  return { status: res.statusCode, headers: res.headers, text, json: () => JSON.parse(text) };
}

export async function get(
  url: string,
  headers: Record<string, string> = {},
  method: "GET" | "HEAD" = "GET",
): Promise<Answer> {
  const res = await request(url, { method, headers });
  const text = await res.body.text();
  return { status: res.statusCode, headers: res.headers, text, json: () => JSON.parse(text) };
}

export const prop = (name: string, type: string, value: string) =>
  `<property for="${name}"><${type}>${value}</${type}></property>`;

export const line = (name: string, type: string, value: string) => `${prop(name, type, value)}\n`;

/** Sends `chunks` as separate HTTP chunks (chunked encoding), awaiting `gapMs` between. */
export function postChunks(url: string, chunks: (Buffer | string)[], gapMs = 0): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, { method: "POST", headers: { ...XML, "transfer-encoding": "chunked" } }, (res) => {
      let text = "";
      res.setEncoding("utf8");
      res.on("data", (d) => (text += d));
      res.on("end", () =>
        resolve({ status: res.statusCode ?? 0, headers: res.headers, text, json: () => JSON.parse(text) }),
      );
    });
    req.on("error", reject);
    req.setNoDelay(true);
    (async () => {
      for (const c of chunks) {
        req.write(c);
        await new Promise((r) => (gapMs > 0 ? setTimeout(r, gapMs) : setImmediate(r)));
      }
      req.end();
    })();
  });
}

/** A streaming GET that collects bytes as they arrive. */
export interface LiveRead {
  status: Promise<number>;
  headers: Promise<Record<string, string | string[] | undefined>>;
  text: () => string;
  /** Resolves when the received text satisfies `pred`. */
  until: (pred: (text: string) => boolean, timeoutMs?: number) => Promise<string>;
  done: Promise<string>;
  /**
   * Settles when the response is over, however it ends: complete (its terminating
   * chunk arrived) or cut (the connection closed before it), with what it received.
   */
  ended: Promise<{ text: string; complete: boolean }>;
  close: () => void;
}

export function liveRead(url: string, headers: Record<string, string> = {}): LiveRead {
  let text = "";
  const waiters: { pred: (t: string) => boolean; resolve: (t: string) => void }[] = [];
  let setStatus!: (n: number) => void;
  let setHeaders!: (h: Record<string, string | string[] | undefined>) => void;
  const status = new Promise<number>((r) => (setStatus = r));
  const hdrs = new Promise<Record<string, string | string[] | undefined>>((r) => (setHeaders = r));
  let req: ReturnType<typeof httpRequest>;
  const done = new Promise<string>((resolve, reject) => {
    req = httpRequest(url, { headers }, (res) => {
      setStatus(res.statusCode ?? 0);
      setHeaders(res.headers);
      res.setEncoding("utf8");
      res.on("data", (d: string) => {
        text += d;
        for (const w of [...waiters]) {
          if (w.pred(text)) {
            waiters.splice(waiters.indexOf(w), 1);
            w.resolve(text);
          }
        }
      });
      res.on("end", () => resolve(text));
      res.on("error", reject);
    });
    req.on("error", reject);
    req.end();
  });
  done.catch(() => undefined);
  return {
    status,
    headers: hdrs,
    text: () => text,
    until: (pred, timeoutMs = 10_000) =>
      pred(text)
        ? Promise.resolve(text)
        : new Promise((resolve, reject) => {
            const t = setTimeout(() => reject(new Error(`timed out; received: ${text.slice(-300)}`)), timeoutMs);
            waiters.push({
              pred,
              resolve: (x) => {
                clearTimeout(t);
                resolve(x);
              },
            });
          }),
    done,
    ended: done.then(
      (t) => ({ text: t, complete: true }),
      () => ({ text, complete: false }),
    ),
    close: () => req.destroy(),
  };
}

/** A chunked POST left open: write to `req` as you like; `answer` settles with the response. */
export function openPost(url: string): {
  req: ReturnType<typeof httpRequest>;
  answer: Promise<{ status: number; body: string }>;
} {
  const req = httpRequest(url, { method: "POST", headers: { ...XML, "transfer-encoding": "chunked" } });
  const answer = new Promise<{ status: number; body: string }>((resolve, reject) => {
    req.on("response", (res) => {
      let body = "";
      res.on("data", (d) => (body += d));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on("error", reject);
  });
  answer.catch(() => undefined);
  return { req, answer };
}
