import { SILENT } from "../../dist/core/log.js";
import { eachReply } from "../../dist/store/file/packed-replies.js";
import { createLengthTable } from "../../dist/store/file/shared-layout.js";
import { Storage } from "../../dist/store/file/storage.js";

/**
 * The file engine's Storage class built directly, on this thread, over `dataDir`: what
 * the storage worker runs, without the worker. Replies are collected; `request` sends
 * one message and resolves with its reply once the group that covers it is done.
 */
export function startStorage(dataDir: string, fsync: "always" | "batch" | "never" = "batch") {
  const lengths = createLengthTable();
  const waiting = new Map<number, (reply: unknown) => void>();
  const storage = new Storage({
    dataDir,
    fsync,
    lengths,
    metaIntervalMs: 100,
    faults: {},
    log: SILENT,
    post: (msg) => {
      if (msg.type !== "replies") return;
      eachReply(msg.replies, (r) => waiting.get(r.id)?.(r));
    },
  });
  const recovered = storage.recover();
  let nextId = 1;
  const request = <T = { ok: boolean; end?: number; slot?: number }>(msg: Record<string, unknown>): Promise<T> =>
    new Promise((resolve) => {
      const id = nextId++;
      waiting.set(id, resolve as (reply: unknown) => void);
      storage.receive([{ ...msg, id } as never]);
    });
  return { storage, lengths, recovered, request, close: () => request({ type: "close" }) };
}
