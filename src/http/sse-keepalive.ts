import type { ServerResponse } from "node:http";

/**
 * SSE answers (typed reads, live queries) get a comment every 15 s, so proxies and
 * browsers keep an idle stream open: one timer for all of them, running only while there
 * are some. A response leaves the set when it closes.
 */

const KEEPALIVE_MS = 15_000;

/** Each response with what writes to it: itself, or the compressor in front of it. */
class KeepAlive extends Map<ServerResponse, (text: string) => unknown> {
  private timer: NodeJS.Timeout | null = null;
  add(res: ServerResponse, write: (text: string) => unknown = (text) => res.write(text)): this {
    super.set(res, write);
    this.timer ??= setInterval(() => {
      for (const w of this.values()) w(": keepalive\n\n");
    }, KEEPALIVE_MS).unref();
    return this;
  }
  override delete(res: ServerResponse): boolean {
    const had = super.delete(res);
    if (this.size === 0 && this.timer) {
      clearInterval(this.timer);
      this.timer = null;
    }
    return had;
  }
}

export const sseKeepAlive = new KeepAlive();
