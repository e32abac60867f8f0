import type { DoneReply, RepliesWire, Reply } from "./protocol.js";

/**
 * A group's replies cross back to the main thread packed when every one of them is a
 * plain DoneReply, the usual case under a load of small writes: as [id, end, id, end, ...]
 * in one Float64Array, which structured clone copies in one piece instead of building
 * each reply property by property. Any other mix goes as objects. Either way the main
 * thread settles the replies in the order they were made.
 */

export function packReplies(replies: Reply[]): RepliesWire {
  for (const r of replies) if (!r.ok || !("end" in r)) return replies;
  const packed = new Float64Array(replies.length * 2);
  for (let i = 0; i < replies.length; i++) {
    const r = replies[i] as DoneReply;
    packed[2 * i] = r.id;
    packed[2 * i + 1] = r.end;
  }
  return packed;
}

export function eachReply(wire: RepliesWire, fn: (reply: Reply) => void): void {
  if (!(wire instanceof Float64Array)) {
    for (const r of wire) fn(r);
    return;
  }
  for (let i = 0; i < wire.length; i += 2) fn({ id: wire[i], ok: true, end: wire[i + 1] });
}
