import { type SaxesAttributeNS, SaxesParser, type SaxesTagPlain } from "saxes";
import { type DbError, errors, type ParseErrorCode, toWire, type WireError } from "../core/errors.js";
import { type Codec, compressValue } from "../format/codec.js";
import { canonicalLine, canonicalValue, compressedLine, type PropertyType, typeCode } from "../format/item-file.js";
import { type CompiledSchema, checkValue, compiledSchema, type SchemaRef } from "../schema/validator.js";
import { type LeadingBinary, leadingBinary } from "./big-binary.js";
import { firstInvalidUtf8, incompleteTail } from "./utf8.js";

/**
 * Turns a slice of a request body into canonical property lines.
 *
 * Parse tasks are stateless (any pool thread may take the next one), so a request's
 * parse state travels with it: each task parses `bytes`, which start at a point where
 * the previous task stopped (a "cut"), and reports how many bytes it consumed. A cut is
 * only ever placed right after a construct that changes the body's phase: the XML
 * declaration, `<item>`, `</property>`, `</item>`. The caller keeps the unconsumed tail
 * and sends it again, followed by newer bytes, in the next task. Whitespace and comments
 * after the last cut are simply parsed again.
 */

export enum Phase {
  /** Nothing but an optional XML declaration, whitespace and comments so far. */
  Prolog = 0,
  /** Bare top-level properties (no <item> wrapper). */
  Top = 1,
  /** Inside <item>. */
  Item = 2,
  /** After </item>: only whitespace and comments may follow. */
  Done = 3,
}

export interface ParseState {
  phase: Phase;
  /** True until the first byte of the body has been consumed: the declaration may come. */
  atStart: boolean;
  /** 1-based line and 0-based column (UTF-16 units) of the first unconsumed byte. */
  line: number;
  column: number;
}

export const INITIAL_STATE: ParseState = Object.freeze({
  phase: Phase.Prolog,
  atStart: true,
  line: 1,
  column: 0,
});

export interface ParseInput {
  bytes: Uint8Array;
  state: ParseState;
  /** The body ended: everything must be consumed and every element closed. */
  final: boolean;
  maxPropertyBytes: number;
  /** Skip the fast path (tests compare the two paths). */
  slowOnly?: boolean;
  /**
   * The caller gives `bytes` up: the canonical lines are written over them when they fit
   * (one buffer per slice then travels parser -> writer -> storage, instead of three),
   * and the unconsumed tail comes back as a copy in `rest`.
   */
  inPlace?: boolean;
  /** The version's schema: each property is checked against it before it is emitted. */
  schema?: SchemaRef;
  /** Binary values of at least `minBytes` are stored compressed with `codec` where that pays. */
  compress?: CompressOptions;
}

export interface CompressOptions {
  codec: Codec;
  minBytes: number;
}

/**
 * The stored line of a binary value (canonical base64 `b64`), compressed, or null when it
 * stays as it came: smaller than `minBytes` decoded, or saving less than a tenth.
 */
export function compressedBinary(name: string, b64: string, c: CompressOptions): string | null {
  if ((b64.length / 4) * 3 < c.minBytes) return null;
  const raw = Buffer.from(b64, "base64");
  const packed = compressValue(c.codec, raw, c.minBytes);
  return packed && compressedLine(name, c.codec, raw.length, packed.toString("base64"));
}

/**
 * The first occurrence in a slice of a name the schema tracks (required, or not
 * repeatable): the writer checks it against the rest of the version, which a slice
 * cannot see. `index` counts the slice's properties; `line` and `column` are where it
 * starts, for a violation only the writer can find.
 */
export interface SeenName {
  name: string;
  index: number;
  line: number;
  column: number;
}

/**
 * What the index needs of a slice's properties, as columns that move between threads
 * cheaply: a property costs no object and no string of its own on the way. A slice of
 * many properties has typed arrays (moved, not copied); a slice of a few has plain
 * arrays, which cost less to send than the buffers behind typed ones.
 */
export interface SliceProps {
  count: number;
  /** The distinct names in this slice. */
  names: string[];
  /** Per property: its name, as an index into `names`. */
  nameIds: Uint32Array | number[];
  /** Per property: its type, as an index into PROPERTY_TYPES. */
  types: Uint8Array | number[];
  /** Per property: the byte length of its line, newline included. */
  lengths: Uint32Array | number[];
}

/** Up to this many properties a slice's columns stay plain arrays. */
const PLAIN_COLUMNS = 16;

export interface ParseOutput {
  /** Canonical lines of the properties completed in this slice, back to back. */
  out: Uint8Array;
  /** With `inPlace`: a copy of the bytes after `consumed`. */
  rest?: Uint8Array;
  props: SliceProps;
  consumed: number;
  state: ParseState;
  /** The first invalid construct; the properties above precede it and are valid. */
  error?: WireError;
  /** With a schema: the tracked names this slice holds, each at its first occurrence. */
  seen?: SeenName[];
}

type FragmentParser = SaxesParser<{ fragment: true; xmlns: false }>;

const MAX_FOR_LENGTH = 1024;
/**
 * One plain property: `for` in double quotes without entities, tabs or newlines (which
 * attribute normalisation would change), a value without markup, entities, CR or
 * control characters. XML whitespace (CR included) may surround the tags.
 */
const SIMPLE =
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what it must exclude
  /[ \t\r\n]*<property[ \t\r\n]+for="([^"<&\t\n\r\x00-\x1f\ufffe\uffff]*)"[ \t\r\n]*>[ \t\r\n]*<(string|number|boolean|datetime|binary)>([^<&\r\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]*)<\/\2>[ \t\r\n]*<\/property>/y;
/** SIMPLE for a binary value of base64 characters and end padding (the length is checked apart). */
const SIMPLE_BINARY =
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what it must exclude
  /[ \t\r\n]*<property[ \t\r\n]+for="([^"<&\t\n\r\x00-\x1f\ufffe\uffff]*)"[ \t\r\n]*>[ \t\r\n]*<(binary)>([A-Za-z0-9+/]*={0,2})<\/binary>[ \t\r\n]*<\/property>/y;
/** SIMPLE up to its value, cut anywhere in the value or the closing tag's name. */
const PARTIAL =
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what it must exclude
  /[ \t\r\n]*<property[ \t\r\n]+for="([^"<&\t\n\r\x00-\x1f\ufffe\uffff]*)"[ \t\r\n]*>[ \t\r\n]*<(?:string|number|boolean|datetime|binary)>([^<&\r\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]*(?:<\/?[a-z]*)?)$/y;
const BLANK = /[ \t\r\n]*$/y;
const ITEM_PREFIX = "<item>";
const decoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });
const encoder = new TextEncoder();

/** Thrown from saxes handlers to stop the parse at the first invalid construct. */
class Stop extends Error {
  constructor(readonly error: DbError) {
    super(error.message);
  }
}

interface OpenProperty {
  name: string;
  /** Where `<property` begins in the slice's text. */
  start: number;
  type: PropertyType | null;
  value: string;
  inValue: boolean;
}

export function parseSlice(input: ParseInput): ParseOutput {
  const { phase } = input.state;
  if (input.slowOnly || (phase !== Phase.Prolog && phase !== Phase.Top)) return new SliceParser(input).run();
  const { bytes } = input;
  let at = 0;
  let state = input.state;
  const bigs: { big: LeadingBinary; at: number }[] = [];
  const schema = input.schema !== undefined;
  // The schema sees every property in the slice parser: big values go there too.
  for (let big = schema ? null : leadingBinary(bytes, input.maxPropertyBytes); big; ) {
    bigs.push({ big, at });
    at += big.end;
    state = {
      phase: Phase.Top,
      atStart: false,
      line: state.line + big.newlines,
      column: big.newlines === 0 ? state.column + big.lastLineUnits : big.lastLineUnits,
    };
    big = leadingBinary(bytes.subarray(at), input.maxPropertyBytes);
  }
  if (bigs.length === 0) return new SliceParser(input).run();
  const rest = new SliceParser({ ...input, bytes: bytes.subarray(at), state, inPlace: false }).run();
  return withLeadingBinaries(input, bigs, at, rest);
}

/** The large binary properties that open a slice, read from its bytes, then the rest's output. */
function withLeadingBinaries(
  input: ParseInput,
  bigs: { big: LeadingBinary; at: number }[],
  restStart: number,
  rest: ParseOutput,
): ParseOutput {
  const { bytes } = input;
  const columns = new Columns();
  const parts = bigs.map(({ big, at }) =>
    storedParts(big, bytes.subarray(at + big.valueStart, at + big.valueEnd), input),
  );
  for (let i = 0; i < bigs.length; i++) {
    const { head, value, tail } = parts[i];
    columns.add(bigs[i].big.name, BINARY, head.length + value.length + tail.length);
  }
  const { props } = rest;
  for (let i = 0; i < props.count; i++) columns.add(props.names[props.nameIds[i]], props.types[i], props.lengths[i]);
  let size = rest.out.length;
  for (let i = 0; i < bigs.length; i++) size += columns.lengths[i];
  const out = new Uint8Array(size);
  let o = 0;
  for (const { head, value, tail } of parts) {
    out.set(head, o);
    o += head.length;
    out.set(value, o);
    o += value.length;
    out.set(tail, o);
    o += tail.length;
  }
  out.set(rest.out, o);
  const consumed = restStart + rest.consumed;
  const result: ParseOutput = { out, props: columns.props(), consumed, state: rest.state };
  if (input.inPlace) result.rest = bytes.slice(consumed);
  if (rest.error) result.error = rest.error;
  return result;
}

/** A large binary property's stored line in three parts: compressed where that pays. */
function storedParts(
  big: LeadingBinary,
  b64: Uint8Array,
  input: ParseInput,
): { head: Uint8Array; value: Uint8Array; tail: Uint8Array } {
  const packed = input.compress
    ? compressedBinary(big.name, Buffer.from(b64.buffer, b64.byteOffset, b64.length).toString("latin1"), input.compress)
    : null;
  return packed === null
    ? { head: big.head, value: b64, tail: big.tail }
    : { head: new Uint8Array(0), value: encoder.encode(packed), tail: new Uint8Array(0) };
}

const BINARY = typeCode("binary");

/** A slice's index columns, each distinct name stored once. */
class Columns {
  readonly names: string[] = [];
  private readonly ids = new Map<string, number>();
  private readonly nameIds: number[] = [];
  private readonly types: number[] = [];
  readonly lengths: number[] = [];

  add(name: string, type: number, length: number): void {
    let id = this.ids.get(name);
    if (id === undefined) {
      id = this.names.push(name) - 1;
      this.ids.set(name, id);
    }
    this.nameIds.push(id);
    this.types.push(type);
    this.lengths.push(length);
  }

  /** Plain arrays for a few properties, typed ones (moved, not copied, between threads) for many. */
  props(): SliceProps {
    const plain = this.nameIds.length <= PLAIN_COLUMNS;
    return {
      count: this.nameIds.length,
      names: this.names,
      nameIds: plain ? this.nameIds : Uint32Array.from(this.nameIds),
      types: plain ? this.types : Uint8Array.from(this.types),
      lengths: plain ? this.lengths : Uint32Array.from(this.lengths),
    };
  }
}

class SliceParser {
  private readonly lines: string[] = [];
  private readonly schema: CompiledSchema | null;
  private readonly seen: SeenName[] = [];
  private readonly seenHere = new Set<string>();
  private readonly columns = new Columns();
  private text = "";
  /** Position (in `text`) just after the last cut, and the phase that holds there. */
  private cut = 0;
  private cutPhase: Phase;
  private cutAtStart: boolean;
  private phase: Phase;
  private depth = 0;
  private prop: OpenProperty | null = null;
  private parser!: FragmentParser;
  /** saxes positions count the synthetic "<item>" we feed when resuming inside one. */
  private base = 0;
  private error: DbError | undefined;
  /** True while feeding the synthetic <item> that re-enters a wrapper we are inside. */
  private resuming = false;

  constructor(private readonly input: ParseInput) {
    this.schema = input.schema ? compiledSchema(input.schema) : null;
    this.phase = input.state.phase;
    this.cutPhase = this.phase;
    this.cutAtStart = input.state.atStart;
  }

  run(): ParseOutput {
    const { bytes, final } = this.input;
    const ready = final ? bytes : bytes.subarray(0, bytes.length - incompleteTail(bytes));
    let badUtf8 = false;
    try {
      this.text = decoder.decode(ready);
    } catch {
      // Parse the good prefix so the properties before the bad byte still commit.
      badUtf8 = true;
      this.text = decoder.decode(ready.subarray(0, firstInvalidUtf8(ready)));
    }
    try {
      let start = 0;
      if (this.input.state.atStart) {
        start = this.prolog();
        if (start < 0) return this.output();
      }
      if (!this.input.slowOnly) {
        start = this.fastPath(start);
        // A plain property still arriving (a large value, or one cut by the slice end)
        // waits for the rest; saxes would only parse it again next time, and slowly.
        if (!final && !badUtf8 && this.phase !== Phase.Done && this.isPlainPartial(start)) return this.output();
      }
      if (!badUtf8 && this.phase !== Phase.Item && this.isBlank(start)) {
        // Nothing but whitespace after the plain properties (a small request's usual
        // body): no need to build a saxes parser to learn that.
        if (final) this.markCut(this.text.length);
        return this.output();
      }
      this.parseContent(start, final && !badUtf8);
      if (badUtf8) this.fail("invalid_xml", "the body is not valid UTF-8", this.text.length);
    } catch (err) {
      if (!(err instanceof Stop)) throw err;
      this.error = err.error;
    }
    return this.output();
  }

  private isBlank(from: number): boolean {
    BLANK.lastIndex = from;
    return BLANK.test(this.text);
  }

  /**
   * Handles a BOM and the XML declaration, which saxes' fragment mode (needed for bare
   * top-level properties) refuses. Returns where content starts, or -1 to wait for more.
   */
  private prolog(): number {
    let at = this.text.charCodeAt(0) === 0xfeff ? 1 : 0;
    if (!this.text.startsWith("<?xml", at)) {
      if (this.text.length - at < 5 && !this.input.final && "<?xml".startsWith(this.text.slice(at))) {
        return -1;
      }
      return at;
    }
    const end = this.text.indexOf("?>", at);
    if (end < 0) {
      if (!this.input.final && this.text.length < 4096) return -1;
      this.fail("invalid_xml", "unterminated XML declaration", at);
    }
    const decl = this.text.slice(at, end + 2);
    const check = new SaxesParser();
    let encoding: string | undefined;
    check.on("xmldecl", (d) => {
      encoding = d.encoding;
    });
    try {
      check.write(`${decl}<r/>`).close();
    } catch (err) {
      this.fail("invalid_xml", `bad XML declaration: ${stripPosition((err as Error).message)}`, at);
    }
    if (encoding !== undefined && !/^utf-?8$/i.test(encoding)) {
      this.fail("unsupported_xml", `encoding "${encoding}" is not supported; send UTF-8`, at);
    }
    at = end + 2;
    this.markCut(at);
    return at;
  }

  private parseContent(start: number, final: boolean): void {
    const p: FragmentParser = new SaxesParser({ fragment: true, xmlns: false });
    this.parser = p;
    p.on("error", (e) => {
      // In fragment mode saxes reports a DOCTYPE as misplaced; it is forbidden anywhere.
      if (/doctype/i.test(e.message)) this.reject("unsupported_xml", "a DOCTYPE is not allowed");
      this.reject("invalid_xml", stripPosition(e.message));
    });
    p.on("doctype", () => this.reject("unsupported_xml", "a DOCTYPE is not allowed"));
    p.on("processinginstruction", () => this.reject("unsupported_xml", "processing instructions are not allowed"));
    // Attributes are checked as they arrive, before saxes has the whole tag.
    p.on("attribute", (a) => {
      if (a.name !== "for") this.reject("invalid_property", `unexpected attribute "${a.name}"`);
      if (a.value.length > MAX_FOR_LENGTH) {
        this.reject("invalid_property", `the "for" attribute is longer than ${MAX_FOR_LENGTH} characters`);
      }
    });
    p.on("opentag", (tag) => this.openTag(tag));
    p.on("closetag", (tag) => this.closeTag(tag));
    p.on("text", (t) => this.onText(t));
    p.on("cdata", (t) => this.onText(t, true));
    if (this.phase === Phase.Item) {
      this.resuming = true;
      p.write(ITEM_PREFIX);
      this.resuming = false;
      this.base = ITEM_PREFIX.length;
      this.depth = 1;
    }
    this.base -= start;
    p.write(start === 0 ? this.text : this.text.slice(start));
    // Whitespace and comments after the last cut are parsed again next time unless the
    // body ended here.
    if (final) {
      if (this.prop || this.depth > 0) {
        const what = this.prop ? "<property>" : "<item>";
        this.reject("invalid_xml", `the body ended inside ${what}`);
      }
      p.close();
      this.markCut(this.text.length);
    }
  }

  private openTag(tag: SaxesTagPlain): void {
    if (this.resuming) return;
    const prop = this.prop;
    if (prop) {
      if (prop.inValue) this.reject("invalid_property", `property "${prop.name}": a value cannot contain elements`);
      if (prop.type !== null)
        this.reject("invalid_property", `property "${prop.name}" has more than one value element`);
      const code = typeCode(tag.name);
      if (code < 0) {
        this.reject(
          "invalid_property",
          `property "${prop.name}": unknown type <${tag.name}>; expected string, number, boolean, datetime or binary`,
        );
      }
      this.noAttributes(tag);
      prop.type = tag.name as PropertyType;
      prop.inValue = true;
      this.depth++;
      return;
    }
    if (tag.name === "property") {
      if (this.phase === Phase.Done) this.reject("invalid_xml", "nothing may follow </item>");
      this.prop = this.openProperty(tag);
      if (this.phase === Phase.Prolog) this.phase = Phase.Top;
      this.depth++;
      return;
    }
    if (tag.name === "item" && this.phase === Phase.Prolog && this.depth === 0) {
      this.noAttributes(tag);
      this.phase = Phase.Item;
      this.depth++;
      this.markCut(this.parser.position - this.base);
      return;
    }
    if (tag.name === "item") this.reject("invalid_property", "<item> may only wrap the whole body, once");
    this.reject("invalid_property", `unexpected element <${tag.name}>; expected <property>`);
  }

  private openProperty(tag: SaxesTagPlain): OpenProperty {
    let name: string | undefined;
    for (const [attr, value] of Object.entries(tag.attributes)) {
      const v = typeof value === "string" ? value : (value as SaxesAttributeNS).value;
      if (attr !== "for") this.reject("invalid_property", `unexpected attribute "${attr}" on <property>`);
      name = v;
    }
    if (!name) this.reject("invalid_property", '<property> needs a non-empty "for" attribute');
    if ((name as string).length > MAX_FOR_LENGTH) {
      this.reject("invalid_property", `the "for" attribute is longer than ${MAX_FOR_LENGTH} characters`);
    }
    // No '<' can be inside the tag (not even in an attribute value): the last one before
    // the position saxes is at opens it.
    const start = this.text.lastIndexOf("<", this.parser.position - this.base - 1);
    return { name: name as string, start, type: null, value: "", inValue: false };
  }

  private closeTag(tag: SaxesTagPlain): void {
    this.depth--;
    const prop = this.prop;
    if (prop?.inValue) {
      prop.inValue = false;
      return;
    }
    if (prop) {
      this.commitProperty(prop);
      this.prop = null;
      this.markCut(this.parser.position - this.base);
      return;
    }
    if (tag.name === "item") {
      this.phase = Phase.Done;
      this.markCut(this.parser.position - this.base);
    }
  }

  private commitProperty(prop: OpenProperty): void {
    if (prop.type === null) {
      this.reject("invalid_property", `property "${prop.name}" has no value element such as <string>`);
    }
    const type = prop.type as PropertyType;
    let value: string;
    try {
      value = canonicalValue(type, prop.value, prop.name);
    } catch (err) {
      this.reject("invalid_value", (err as Error).message);
    }
    const line = canonicalLine(prop.name, type, value);
    const bytes = line.length > this.input.maxPropertyBytes ? line.length : Buffer.byteLength(line);
    if (bytes > this.input.maxPropertyBytes) {
      this.reject("property_too_large", `property "${prop.name}" is larger than ${this.input.maxPropertyBytes} bytes`);
    }
    if (this.schema) this.checkSchema(this.schema, prop.name, type, value, prop.start);
    this.emitValue(line, bytes, prop.name, type, value);
  }

  /**
   * Refuses a property its schema does not allow (the slice ends before it, as at any
   * invalid construct), and notes the first occurrence of each tracked name. `from` is
   * where the property's text begins: its `<property` is the first '<' from there.
   */
  private checkSchema(schema: CompiledSchema, name: string, type: PropertyType, value: string, from: number): void {
    const c = schema.rulesOf(name);
    const broken = c === undefined ? schema.undeclared : checkValue(c, type, value);
    if (broken) throw new Stop(errors.schemaViolation(name, broken.rule, broken.message, this.startOf(from)));
    if (c === undefined || !c.tracked) return;
    const unique = !c.rules.repeated;
    if (this.seenHere.has(name)) {
      if (unique) throw new Stop(errors.repeatedProperty(name, this.startOf(from)));
      return;
    }
    this.seenHere.add(name);
    const at = unique ? this.startOf(from) : { line: 0, column: 0 };
    this.seen.push({ name, index: this.lines.length, line: at.line, column: at.column });
  }

  /** Where the property whose text begins at `from` has its `<property`. */
  private startOf(from: number): { line: number; column: number } {
    return this.locate(this.text.indexOf("<", from));
  }

  /** A checked property; a large binary value is compressed here, where that pays. */
  private emitValue(line: string, bytes: number, name: string, type: PropertyType, value: string): void {
    const c = this.input.compress;
    const packed = c && type === "binary" ? compressedBinary(name, value, c) : null;
    if (packed === null) this.emit(line, bytes, name, type);
    else this.emit(packed, packed.length + Buffer.byteLength(name) - name.length, name, type);
  }

  private emit(line: string, bytes: number, name: string, type: PropertyType): void {
    this.lines.push(line);
    this.columns.add(name, typeCode(type), bytes);
  }

  /**
   * The fast path: a run of properties in the plain shape SIMPLE matches is parsed with
   * one sticky regex instead of saxes, several times faster. It takes only what saxes
   * would take identically (no entities, CDATA, comments, CR, control characters, odd
   * quoting) and gives up, without judging, at anything else, including anything
   * invalid: saxes then parses from there and is the one that reports errors.
   * test/fast-path.test.ts holds the two paths to the same output.
   */
  private fastPath(from: number): number {
    if (this.phase === Phase.Done) return from;
    const max = this.input.maxPropertyBytes;
    let at = from;
    for (;;) {
      const m = this.plainAt(at);
      if (m === null) break;
      const [, name, type, raw] = m as unknown as [string, string, PropertyType, string];
      // "]]>" is only an error in text; a value valid as any other type holds no "]".
      if (name.length === 0 || name.length > MAX_FOR_LENGTH || (type === "string" && raw.includes("]]>"))) break;
      let value: string;
      try {
        value = type === "binary" && m === this.binaryMatch ? raw : canonicalValue(type, raw, name);
      } catch {
        break;
      }
      const line = canonicalLine(name, type, value);
      // Only a string value (and the name) can hold non-ASCII: spare a scan of a big value.
      const bytes = type === "string" ? Buffer.byteLength(line) : line.length + Buffer.byteLength(name) - name.length;
      if (bytes > max) break;
      if (this.schema) this.checkSchema(this.schema, name, type, value, at);
      this.emitValue(line, bytes, name, type, value);
      if (this.phase === Phase.Prolog) this.phase = Phase.Top;
      at = this.plainEnd;
      this.markCut(at);
    }
    return at;
  }

  private binaryMatch: RegExpExecArray | null = null;
  private plainEnd = 0;

  /**
   * The plain property at `at`, if any. A binary value in its usual shape (base64 without
   * whitespace) is matched and validated in one scan, as it may be megabytes long; the
   * length check completes the validation, so canonicalValue need not scan it again.
   */
  private plainAt(at: number): RegExpExecArray | null {
    SIMPLE_BINARY.lastIndex = at;
    const b = SIMPLE_BINARY.exec(this.text);
    if (b !== null && b[3].length % 4 === 0) {
      this.binaryMatch = b;
      this.plainEnd = SIMPLE_BINARY.lastIndex;
      return b;
    }
    SIMPLE.lastIndex = at;
    const m = SIMPLE.exec(this.text);
    this.plainEnd = SIMPLE.lastIndex;
    return m;
  }

  /**
   * True when text[from..] is the beginning of a plain property, cut short, in which
   * saxes too would find nothing to report yet (so deferring it changes no outcome).
   */
  private isPlainPartial(from: number): boolean {
    PARTIAL.lastIndex = from;
    const m = PARTIAL.exec(this.text);
    if (!m) return false;
    const [, name, tail] = m;
    return name.length > 0 && name.length <= MAX_FOR_LENGTH && !tail.includes("]]>");
  }

  private onText(t: string, cdata = false): void {
    const prop = this.prop;
    if (prop?.inValue) {
      prop.value += t;
      return;
    }
    if (cdata || /[^ \t\r\n]/.test(t)) {
      const where = prop ? `inside property "${prop.name}"` : "between properties";
      this.reject("invalid_property", `text is not allowed ${where}`);
    }
  }

  private noAttributes(tag: SaxesTagPlain): void {
    const first = Object.keys(tag.attributes)[0];
    if (first !== undefined) this.reject("invalid_property", `unexpected attribute "${first}" on <${tag.name}>`);
  }

  private markCut(at: number): void {
    this.cut = at;
    this.cutPhase = this.phase;
    this.cutAtStart = false;
  }

  /** Body line (1-based) and column (1-based, UTF-16 units) of `text[index]`. */
  private locate(index: number): { line: number; column: number } {
    const { line, column } = advance(this.input.state, this.text, index);
    return { line, column: column + 1 };
  }

  private reject(code: ParseErrorCode, message: string): never {
    const at = Math.min(Math.max(this.parser.position - this.base, 0), this.text.length);
    this.fail(code, message, at);
  }

  private fail(code: ParseErrorCode, message: string, at: number): never {
    throw new Stop(errors.parse(code, message, this.locate(at)));
  }

  private output(): ParseOutput {
    const text = this.lines.length === 1 ? this.lines[0] : this.lines.join("");
    const consumed = Buffer.byteLength(this.cut === this.text.length ? this.text : this.text.slice(0, this.cut));
    let out: Uint8Array;
    let rest: Uint8Array | undefined;
    if (this.input.inPlace) {
      // The body text is decoded already; the tail is saved before it is written over.
      const { bytes } = this.input;
      rest = bytes.slice(consumed);
      const { read, written } = encoder.encodeInto(text, bytes);
      out = read === text.length ? bytes.subarray(0, written) : encoder.encode(text);
    } else {
      out = encoder.encode(text);
    }
    const { line, column } = advance(this.input.state, this.text, this.cut);
    const state: ParseState = {
      phase: this.cutPhase,
      atStart: this.cutAtStart && consumed === 0,
      line,
      column,
    };
    const props = this.columns.props();
    const result: ParseOutput = { out, props, consumed, state };
    if (rest) result.rest = rest;
    if (this.error) result.error = toWire(this.error);
    if (this.schema) result.seen = this.seen;
    return result;
  }
}

/** Where `text[index]` is in the body, given where `text[0]` is. */
function advance(from: ParseState, text: string, index: number): { line: number; column: number } {
  let lines = 0;
  let lastNl = -1;
  for (let i = text.indexOf("\n"); i >= 0 && i < index; i = text.indexOf("\n", i + 1)) {
    lines++;
    lastNl = i;
  }
  return lines === 0
    ? { line: from.line, column: from.column + index }
    : { line: from.line + lines, column: index - lastNl - 1 };
}

/** saxes prefixes messages with "line:column: "; we report those as fields instead. */
function stripPosition(message: string): string {
  return message.replace(/^(?:[^:]*:)?\d+:\d+: /, "");
}

/** The buffers of a parse result, for a transfer list (`out` may share the input's). */
export function outputTransferables(o: ParseOutput): ArrayBuffer[] {
  const list = [o.out.buffer as ArrayBuffer, ...transferables(o.props)];
  if (o.rest) list.push(o.rest.buffer as ArrayBuffer);
  return list;
}

/** The buffers of a SliceProps, for a transfer list. */
export function transferables(p: SliceProps): ArrayBuffer[] {
  const list: ArrayBuffer[] = [];
  for (const column of [p.nameIds, p.types, p.lengths]) {
    if (ArrayBuffer.isView(column)) list.push(column.buffer as ArrayBuffer);
  }
  return list;
}
