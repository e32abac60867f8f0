import type { ServerResponse } from "node:http";

/**
 * SSE answers (typed reads, live queries) get a comment every 15 s, so proxies and
 * browsers keep an idle stream open: one timer for all of them, running only while there
 * are some. A response leaves the set when it closes.
 */

const KEEPALIVE_MS = 15_000;

class KeepAlive extends Set<ServerResponse> {
  private timer: NodeJS.Timeout | null = null;
  override add(res: ServerResponse): this {
    super.add(res);
    this.timer ??= setInterval(() => {
      for (const r of this) r.write(": keepalive\n\n");
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
