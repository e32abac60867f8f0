import { ftruncateSync } from "node:fs";
import { errors } from "../../core/errors.js";
import type { Log } from "../../core/log.js";
import { versionKey } from "../../core/names.js";
import type { SliceProps } from "../../parse/property-parser.js";
import type { Binding } from "../types.js";
import { failure, type Group, type WriterState } from "./group.js";
import type { GroupCommit } from "./group-commit.js";
import type { AppendRequest, BeginRequest, WriteRequest } from "./protocol.js";
import type { Version } from "./version.js";
import type { VersionCache } from "./versions.js";

/**
 * Write requests in the storage worker, from begin to finish or drop: refused at begin
 * if the version takes no writes, the version created by the first commit, appends and
 * seals written at the version's end (GroupCommit.writeAt), each answer deferred to
 * after the group's sync.
 */
export class Writers {
  private readonly writers = new Map<number, WriterState>();

  constructor(
    private readonly versions: VersionCache,
    private readonly commits: GroupCommit,
    /** Test hook (README, "Fault injection"): an append to this item kills the thread. */
    private readonly crashItem: string | undefined,
    /** A writer ended: its version may leave memory. */
    private readonly ended: (v: Version | null) => void,
    private readonly log: Log,
  ) {}

  get size(): number {
    return this.writers.size;
  }

  get(writer: number): WriterState | undefined {
    return this.writers.get(writer);
  }

  /**
   * A write request starts: refused now if the version takes no writes or its length is
   * not X-Expected-Offset. Otherwise the version is created by the request's first
   * commit, so a request rejected before it commits anything leaves no version behind
   * and seals nothing.
   */
  begin(msg: BeginRequest, group: Group): void {
    this.start(msg, group);
    group.answers.push(() => ({ id: msg.id, ok: true, end: 0 }));
  }

  /** A whole small request in one message: begin, its one append, finish. */
  write(msg: WriteRequest, group: Group): void {
    try {
      const w = this.start(msg, group);
      const v = this.versionFor(w, group);
      const start = v.size;
      const appended = msg.bytes && msg.props ? this.appendTo(w, msg.bytes, msg.props, group) : null;
      let end: number;
      try {
        end = this.finishWith(w, msg.seal, group);
      } catch (err) {
        // One message, one answer: the seal failed, so the append it carried is taken back.
        if (msg.bytes && appended) this.takeBack(v, start, msg.bytes, group);
        throw err;
      }
      group.answers.push(() => {
        const err = group.failed.get(v);
        if (err) return failure(msg.id, err);
        return { id: msg.id, ok: true, end: appended ? appended() : end };
      });
    } finally {
      this.end(msg.writer);
    }
  }

  append(msg: AppendRequest, w: WriterState, group: Group): void {
    const v = this.versionFor(w, group);
    const indexed = this.appendTo(w, msg.bytes, msg.props, group);
    group.answers.push(() => {
      const err = group.failed.get(v);
      return err ? failure(msg.id, err) : { id: msg.id, ok: true, end: indexed() };
    });
  }

  /** Creates the version if nothing did (an empty body creates it), then seals it if asked. */
  finish(id: number, w: WriterState, seal: boolean, group: Group): void {
    const v = this.versionFor(w, group);
    const end = this.finishWith(w, seal, group);
    group.answers.push(() => {
      const err = group.failed.get(v);
      return err ? failure(id, err) : { id, ok: true, end };
    });
  }

  /** The request is over (finished or dropped): forget it. */
  end(writer: number): void {
    const w = this.writers.get(writer);
    if (!w) return;
    this.writers.delete(writer);
    if (w.target) w.target.writers--;
    this.ended(w.target);
  }

  /** Registers the writer, refused (and remembered as refused) if it may not write. */
  private start(msg: Omit<BeginRequest, "type" | "id">, group: Group): WriterState {
    const { itemId, version } = msg;
    const key = versionKey(itemId, version);
    const w: WriterState = { key, itemId, version, binding: msg.binding, error: null, target: null };
    this.writers.set(msg.writer, w);
    try {
      const newest = this.versions.newest(itemId);
      const v = this.versions.load(itemId, version, key, group);
      if (newest > version) {
        throw errors.versionSuperseded(itemId, version, v?.size);
      }
      if (v?.sealed) throw errors.versionSealed(itemId, version, v.size);
      if (v && !sameBinding(v.binding, msg.binding)) {
        throw errors.typeMismatch(itemId, version, v.binding?.type, msg.binding?.type);
      }
      const current = v ? v.size : 0;
      if (msg.expectedOffset !== undefined && msg.expectedOffset !== current) {
        throw errors.offsetMismatch(msg.expectedOffset, current);
      }
      if (v) hold(w, v);
    } catch (err) {
      w.error = err;
      throw err;
    }
    return w;
  }

  /** The version a writer writes to, created here by its first commit. */
  private versionFor(w: WriterState, group: Group): Version {
    if (w.target) return w.target;
    let v = this.versions.load(w.itemId, w.version, w.key, group);
    if (!v) {
      const newest = this.versions.newest(w.itemId);
      if (newest > w.version) {
        throw errors.versionSuperseded(w.itemId, w.version);
      }
      v = this.versions.create(w.itemId, w.version, w.key, group, w.binding);
    }
    hold(w, v);
    return v;
  }

  /**
   * Writes the lines; the returned function, called once the group's sync succeeded,
   * indexes them and gives the version's length after them.
   */
  private appendTo(w: WriterState, bytes: Uint8Array, props: SliceProps, group: Group): () => number {
    const v = this.versionFor(w, group);
    if (this.crashItem !== undefined && v.itemId === this.crashItem) process.exit(70);
    writable(v);
    const start = v.size;
    this.commits.writeAt(v, bytes, group);
    group.touched.add(v);
    group.writers.add(w);
    return () => {
      let offset = start;
      const { names, nameIds, types, lengths: sizes, count } = props;
      for (let i = 0; i < count; i++) {
        v.index.add(names[nameIds[i]], types[i], offset, sizes[i] - 1);
        offset += sizes[i];
      }
      return offset;
    };
  }

  /** Undoes this group's last write to `v` (it has not been synced or published). */
  private takeBack(v: Version, start: number, bytes: Uint8Array, group: Group): void {
    try {
      ftruncateSync(v.fd, start);
    } catch (err) {
      this.log.error(`could not cut ${v.key}.data back: ${(err as Error).message}`);
    }
    v.size = start;
    const record = group.written.get(v);
    if (record && record.bytes[record.bytes.length - 1] === bytes) {
      record.bytes.pop();
      record.length -= bytes.length;
      if (record.bytes.length === 0) group.written.delete(v);
    }
  }

  /** Creates the version if nothing did, seals it if asked; returns its length before any seal. */
  private finishWith(w: WriterState, seal: boolean, group: Group): number {
    const v = this.versionFor(w, group);
    const end = v.size;
    group.writers.add(w);
    if (seal) {
      if (v.superseded) writable(v);
      if (!v.sealed) this.versions.writeSeal(v, group, false);
    }
    return end;
  }
}

function sameBinding(a: Binding | undefined, b: Binding | undefined): boolean {
  return a === b || (a !== undefined && b !== undefined && a.type === b.type && a.schemaVersion === b.schemaVersion);
}

/** The writer keeps its version loaded until it ends. */
function hold(w: WriterState, v: Version): void {
  w.target = v;
  v.writers++;
}

function writable(v: Version): void {
  if (v.superseded) {
    throw errors.versionSuperseded(v.itemId, v.version, v.size);
  }
  if (v.sealed) throw errors.versionSealed(v.itemId, v.version, v.size);
}
