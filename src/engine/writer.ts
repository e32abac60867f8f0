import { EventEmitter } from "node:events";
import { type DbError, errors, fromWire } from "../core/errors.js";
import { mayCompress, type ParserPool } from "../parse/parser-pool.js";
import {
  type CompressOptions,
  INITIAL_STATE,
  type ParseOutput,
  type ParseState,
  parseSlice,
} from "../parse/property-parser.js";
import type { Committed, Store } from "../store/types.js";
import type { SchemaGate } from "./schema-bindings.js";

/**
 * One write request's path through the engine: body chunks -> parse tasks -> appends.
 *
 * At most one parse task per request is in flight (properties must stay in body order);
 * chunks that arrive meanwhile are batched into the next task, so a fast writer pays one
 * thread hop per batch, not per property. Appends are pipelined: the next slice parses
 * while the store commits the previous one, and the store keeps their
 * order because it handles messages in arrival order.
 */

/** Above this many unparsed bytes, or bytes waiting to commit, the caller should pause. */
const HIGH_WATER = 256 << 10;
const APPEND_HIGH_WATER = 8 << 20;
/** A slice that ended mid-property is parsed again only once this much more arrived... */
const SMALL_REMAINDER = 64 << 10;
/** Tags and a 1024-character name around a property's value, in raw bytes. */
const RAW_ALLOWANCE = 8 << 10;

export interface WriteResult {
  committed: number;
  /** Data file length after this request's last property. */
  offset: number;
  sealed: boolean;
}

/** A failed write: the error plus how many of the request's properties did commit. */
export class WriteFailure extends Error {
  constructor(
    readonly error: DbError,
    readonly committed: number,
  ) {
    super(error.message);
  }
}

export interface WriterDeps {
  pool: ParserPool;
  store: Store;
  maxPropertyBytes: number;
  /** Large binary values are stored compressed (README, "Compression"). */
  compress?: CompressOptions;
}

/** The version a write request goes to, its X-Expected-Offset, and what it knows of its body. */
export interface WriteTarget {
  itemId: string;
  version: number;
  expectedOffset?: number;
  /** ?seal=true */
  seal: boolean;
  /** Content-Length, when the request has one: the body is whole once this many arrived. */
  contentLength?: number;
  /** The version's schema, when it has one or this write binds it to one. */
  gate?: SchemaGate;
}

export class Writer extends EventEmitter {
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private remainder: Uint8Array = new Uint8Array(0);
  private state: ParseState = INITIAL_STATE;
  private parsing = false;
  /** Since the last parse: did a '>' arrive, and does the newest chunk end with one? */
  private pendingHasGt = false;
  private pendingEndsWithTag = false;
  private ended = false;
  private finalParsed = false;
  /** Storage requests (begin, appends, finish) not yet answered. */
  private inFlight = 0;
  private appendBytesInFlight = 0;
  private parsingBytes = 0;
  /** undefined: finish not sent; null: sent, unanswered; a number: its answer. */
  private finishEnd: number | null | undefined = undefined;
  private committed = 0;
  private lastEnd = -1;
  private error: DbError | null = null;
  /** A seal the schema refused (required properties missing): the answer once all is committed. */
  private sealRefused: DbError | null = null;
  private wantsDrain = false;
  private settled = false;
  private aborted = false;
  private readonly done: Promise<WriteResult>;
  private settle!: { resolve: (r: WriteResult) => void; reject: (e: WriteFailure) => void };

  private readonly id: number;
  /** The store has heard of this request (begin or write sent). */
  private begun = false;
  private received = 0;

  constructor(
    private readonly deps: WriterDeps,
    private readonly target: WriteTarget,
  ) {
    super();
    this.done = new Promise((resolve, reject) => {
      this.settle = { resolve, reject };
    });
    // The caller awaits `finish()`; an abandoned writer must not raise unhandled rejections.
    this.done.catch(() => undefined);
    this.id = deps.store.newWriterId();
  }

  /**
   * The store hears of the request with its first parse result, not before: a
   * body that is whole by then (the usual small request) goes as one `write` message.
   * The first chunk is parsed as soon as it arrives, so a refusal (a sealed version, say)
   * still comes before a large body is read.
   */
  private ensureBegun(): void {
    if (this.begun) return;
    this.begun = true;
    const { itemId, version, expectedOffset, gate } = this.target;
    this.track(
      this.deps.store
        .begin({ writer: this.id, itemId, version, expectedOffset, binding: gate?.binding })
        .catch((err: DbError) => {
          // A refusal means nothing of the request was written; it is the answer, whatever
          // else went wrong meanwhile (a bad body, say).
          this.error = err;
          throw err;
        }),
    );
  }

  /**
   * Body bytes this request holds: unparsed, in a parse task, or parsed and waiting for
   * the store. Backpressure keeps it bounded whatever the body's size.
   */
  get queuedBytes(): number {
    return this.pendingBytes + this.remainder.length + this.parsingBytes + this.appendBytesInFlight;
  }

  /** Settles when the request is done: early on the first error, else after finish(). */
  get result(): Promise<WriteResult> {
    return this.done;
  }

  /** Feeds a body chunk; false means "pause the source until 'drain'". */
  push(chunk: Buffer): boolean {
    if (this.error || this.ended) return true;
    this.pending.push(chunk);
    this.pendingBytes += chunk.length;
    this.received += chunk.length;
    // With a Content-Length the last chunk is known when it arrives, before 'end'.
    if (this.target.contentLength !== undefined && this.received >= this.target.contentLength) this.ended = true;
    this.pendingHasGt ||= chunk.includes(0x3e);
    this.pendingEndsWithTag = endsWithTagClose(chunk);
    if (!this.pendingHasGt) this.checkRemainder();
    this.kick();
    if (!this.overloaded()) return true;
    // The caller pauses now; it must hear 'drain' as soon as there is room again.
    this.wantsDrain = true;
    return false;
  }

  /**
   * The body is complete; resolves when every property is committed and, with `seal`,
   * the version sealed. Rejects with a WriteFailure that counts what did commit.
   */
  finish(): Promise<WriteResult> {
    this.ended = true;
    this.kick();
    this.maybeSettle();
    return this.done;
  }

  /** Ends the request early with `err` (shutdown, idle body); what is parsed still commits. */
  interrupt(err: DbError): void {
    this.fail(err);
    this.ended = true;
    this.maybeSettle();
  }

  /** The client went away: parse no more; what is already parsed still commits. */
  abort(): void {
    this.ended = true;
    this.aborted = true;
    this.pending = [];
    this.pendingBytes = 0;
    this.maybeSettle();
  }

  /**
   * Pause the source past this. While one large property is arriving (a big remainder),
   * the pending bytes must be allowed to grow as large as the remainder, or kick() would
   * wait for bytes the paused source can never send.
   */
  private overloaded(): boolean {
    return (
      this.pendingBytes > Math.max(HIGH_WATER, this.remainder.length) || this.appendBytesInFlight > APPEND_HIGH_WATER
    );
  }

  /**
   * Starts a parse task if one is worth running. A slice that stopped inside a property
   * is not re-parsed on every byte: only when a '>' (which may close it) arrived while
   * the remainder is small, when the bytes have doubled, or at the end of the body. That
   * keeps a large value arriving in tiny chunks linear rather than quadratic.
   */
  private kick(): void {
    if (this.parsing || this.error || this.finalParsed || this.aborted) return;
    if (!this.ended) {
      if (this.pendingBytes === 0) return;
      // No '>' since the last parse: no property can have completed, so parsing would
      // find nothing new. The bytes are only folded into the remainder when the source
      // must pause, to keep memory in one piece.
      const worth =
        this.remainder.length === 0 ||
        (this.pendingHasGt &&
          (this.remainder.length < SMALL_REMAINDER ||
            this.pendingEndsWithTag ||
            this.pendingBytes >= this.remainder.length));
      if (!worth) {
        if (this.overloaded()) this.foldPending();
        return;
      }
    }
    this.pendingHasGt = false;
    this.pendingEndsWithTag = false;
    const bytes = this.takeBuffered();
    const final = this.ended;
    this.parsing = true;
    // The remainder is in `bytes` too, and still counted as the remainder until replaced.
    this.parsingBytes = bytes.length - this.remainder.length;
    this.deps.pool
      .parse({
        bytes,
        state: this.state,
        final,
        maxPropertyBytes: this.deps.maxPropertyBytes,
        inPlace: true,
        schema: this.target.gate?.ref,
        compress: this.deps.compress,
      })
      .then(
        (out) => this.onParsed(bytes, out, final),
        (err: Error) => this.fail(errors.internal(`parser failed: ${err.message}`)),
      )
      .finally(() => {
        this.parsing = false;
        this.parsingBytes = 0;
        if (!this.error) this.kick();
        this.maybeDrain();
        this.maybeSettle();
      });
  }

  private onParsed(bytes: Uint8Array, parsed: ParseOutput, final: boolean): void {
    const admitted = this.target.gate && !this.error ? this.target.gate.admit(parsed) : null;
    const out = admitted?.out ?? parsed;
    const names = admitted?.names ?? NO_NAMES;
    if (final && !this.begun && !out.error && !this.error && !this.aborted) {
      this.finishWhole(out, names);
      this.state = out.state;
      this.remainder = new Uint8Array(0);
      this.finalParsed = true;
      return;
    }
    const append = out.props.count > 0 && !this.error;
    // Begun even when the body is invalid: a refusal (409) is the answer then, not the 400.
    if (append || (!this.error && !this.aborted)) this.ensureBegun();
    if (append) this.appendSlice(out, names);
    this.state = out.state;
    this.remainder = out.rest ?? bytes.subarray(out.consumed);
    if (out.error) {
      const e = out.error;
      this.fail(fromWire(e));
      return;
    }
    if (final) this.finalParsed = true;
    this.checkRemainder();
  }

  /**
   * Unparsed bytes that do not complete a property. The raw element may exceed its
   * canonical size by its tags and by whitespace inside base64; past that allowance it
   * cannot fit, so stop buffering it now.
   */
  private checkRemainder(): void {
    const limit = this.deps.maxPropertyBytes;
    if (this.remainder.length + this.pendingBytes > limit + (limit >> 3) + RAW_ALLOWANCE) {
      this.fail(errors.propertyTooLarge(limit));
      this.maybeSettle();
    }
  }

  /** The remainder and the pending chunks as one fresh array (never a pooled slab). */
  private takeBuffered(): Uint8Array {
    const bytes = new Uint8Array(this.remainder.length + this.pendingBytes);
    bytes.set(this.remainder, 0);
    let at = this.remainder.length;
    for (const c of this.pending) {
      bytes.set(c, at);
      at += c.length;
    }
    this.pending = [];
    this.pendingBytes = 0;
    return bytes;
  }

  /** Moves the pending chunks into the remainder (one copy), freeing the source to send on. */
  private foldPending(): void {
    this.remainder = this.takeBuffered();
    this.pendingEndsWithTag = false;
    this.checkRemainder();
    this.maybeDrain();
    this.maybeSettle();
  }

  /** The whole body parsed at once: begin, append and finish in one message. */
  private finishWhole(out: ParseOutput, names: string[]): void {
    this.begun = true;
    this.finishEnd = null;
    const count = out.props.count;
    this.track(
      settled(this.target.gate, names, storeWhole(this.deps.store, this.id, this.target, out, this.sealAllowed())).then(
        ({ end }) => {
          if (count > 0) {
            this.committed += count;
            this.lastEnd = end;
          }
          this.finishEnd = end;
        },
      ),
    );
  }

  private appendSlice(out: ParseOutput, names: string[]): void {
    const size = out.out.length;
    this.appendBytesInFlight += size;
    const request = this.deps.store.append({ writer: this.id, bytes: out.out, props: out.props });
    this.track(
      settled(this.target.gate, names, request).then((reply) => {
        this.committed += out.props.count;
        this.lastEnd = reply.end;
      }),
      () => {
        this.appendBytesInFlight -= size;
      },
    );
  }

  /**
   * Whether the finish may seal: with a schema, only a version holding every required
   * property (else it stays open, and the answer says what is missing).
   */
  private sealAllowed(): boolean {
    const { seal, gate } = this.target;
    if (!seal || !gate) return seal;
    const missing = gate.missing();
    if (missing.length === 0) return true;
    this.sealRefused = errors.requiredMissing(missing);
    return false;
  }

  /** Counts a storage request in flight; the writer settles only once none is. */
  private track(request: Promise<unknown>, after?: () => void): void {
    this.inFlight++;
    request
      .catch((err: DbError) => this.fail(err))
      .finally(() => {
        this.inFlight--;
        after?.();
        this.maybeDrain();
        this.maybeSettle();
      });
  }

  private fail(err: DbError): void {
    this.error ??= err;
    this.pending = [];
    this.pendingBytes = 0;
  }

  private maybeDrain(): void {
    if (this.overloaded()) {
      this.wantsDrain = true;
      return;
    }
    if (this.wantsDrain) {
      this.wantsDrain = false;
      this.emit("drain");
    }
  }

  /**
   * The finish message goes as soon as the body is parsed, behind the appends still in
   * flight (the worker keeps their order). The request settles once every message it
   * sent is answered, so `committed` counts every append that did commit.
   */
  private maybeSettle(): void {
    if (this.settled || this.parsing) return;
    const failed = this.error !== null || this.aborted;
    if (!failed && this.finalParsed && this.finishEnd === undefined) {
      this.finishEnd = null;
      this.track(
        this.deps.store.finish(this.id, this.sealAllowed()).then((reply) => {
          this.target.gate?.stored();
          this.finishEnd = reply.end;
        }),
      );
    }
    if (this.inFlight > 0 || (!failed && this.finishEnd === undefined)) return;
    this.settled = true;
    if (typeof this.finishEnd === "number" && this.sealRefused) {
      this.settle.reject(new WriteFailure(this.sealRefused, this.committed));
      return;
    }
    if (typeof this.finishEnd === "number") {
      // `offset` never counts the seal's </item>: it is where this request's data ends.
      const offset = this.lastEnd >= 0 ? this.lastEnd : this.finishEnd;
      this.settle.resolve({ committed: this.committed, offset, sealed: this.target.seal });
      return;
    }
    if (this.begun && this.finishEnd === undefined) this.deps.store.drop(this.id);
    const error = this.error ?? errors.internal("the client disconnected");
    this.settle.reject(new WriteFailure(error, this.committed));
  }
}

const NO_NAMES: string[] = [];

/** A store request that carries admitted names: the gate hears how it ended. */
function settled<T>(gate: SchemaGate | undefined, names: string[], request: Promise<T>): Promise<T> {
  if (!gate) return request;
  return request.then(
    (reply) => {
      gate.settle(names, true);
      gate.stored();
      return reply;
    },
    (err) => {
      gate.settle(names, false);
      throw err;
    },
  );
}

/**
 * A request's whole body, parsed: one `write` message (begin, append, finish). Its reply's
 * `end` is the version's length after the body's properties (before any seal).
 */
function storeWhole(
  store: Store,
  writer: number,
  target: WriteTarget,
  out: ParseOutput,
  seal: boolean,
): Promise<Committed> {
  const { itemId, version, expectedOffset, gate } = target;
  const some = out.props.count > 0;
  return store.write({
    writer,
    itemId,
    version,
    expectedOffset,
    binding: gate?.binding,
    seal,
    bytes: some ? out.out : undefined,
    props: some ? out.props : undefined,
  });
}

/**
 * A small request whose body has fully arrived: parsed on this thread and sent as one
 * message, with none of a Writer's streaming machinery (the usual small append). A body
 * that does not parse cleanly returns null: the caller streams it through a Writer, so
 * that its answer (a refusal first, then the error, and what did commit) is the same.
 * `done` runs as the answer arrives, before anything awaiting the result resumes.
 */
export function writeWhole(
  deps: WriterDeps,
  target: WriteTarget,
  body: Uint8Array,
  done: () => void,
): Promise<WriteResult> | null {
  let out: ParseOutput;
  const { gate } = target;
  // A value to compress goes to the parser pool, through a Writer.
  if (mayCompress({ bytes: body, compress: deps.compress })) return null;
  try {
    // Not in place: the Writer may need the body as it came.
    out = parseSlice({
      bytes: body,
      state: INITIAL_STATE,
      final: true,
      maxPropertyBytes: deps.maxPropertyBytes,
      schema: gate?.ref,
    });
  } catch {
    return null;
  }
  if (out.error || gate?.wouldCut(out)) return null;
  let seal = target.seal;
  let sealRefused: DbError | null = null;
  let names = NO_NAMES;
  if (gate) {
    ({ out, names } = gate.admit(out));
    const missing = seal ? gate.missing() : [];
    if (missing.length > 0) {
      seal = false;
      sealRefused = errors.requiredMissing(missing);
    }
  }
  const committed = out.props.count;
  // One continuation between the reply and the caller: this path runs per small request.
  return settled(gate, names, storeWhole(deps.store, deps.store.newWriterId(), target, out, seal)).then(
    (reply) => {
      done();
      if (sealRefused) throw new WriteFailure(sealRefused, committed);
      return { committed, offset: reply.end, sealed: seal };
    },
    (err: DbError) => {
      done();
      throw new WriteFailure(err, 0);
    },
  );
}

/** True when the chunk ends with '>' and optional whitespace: a writer paused after a tag. */
function endsWithTagClose(chunk: Buffer): boolean {
  for (let i = chunk.length - 1; i >= 0; i--) {
    const c = chunk[i];
    if (c === 0x3e) return true;
    if (c !== 0x20 && c !== 0x0a && c !== 0x0d && c !== 0x09) return false;
  }
  return false;
}
