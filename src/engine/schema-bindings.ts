import { DbError, errors } from "../core/errors.js";
import { versionKey } from "../core/names.js";
import type { ParseOutput, SliceProps } from "../parse/property-parser.js";
import type { SchemaRegistry } from "../schema/registry.js";
import { type CompiledSchema, compiledSchema, type SchemaRef } from "../schema/validator.js";
import type { Binding, Store, StoredVersionInfo, VersionState } from "../store/types.js";

/**
 * Which schema each version is pinned to (README, "Schemas"), as the engine needs it
 * before a write's first byte is parsed. The store holds the bindings durably and is the
 * judge: a write names the binding it checked against, and the store refuses it
 * (type_mismatch) unless the version has exactly that one, so two writers racing to
 * create a version can never leave properties checked against another schema. This map
 * is what the engine knows of them: loaded from the store at start and kept as writes
 * bind versions.
 *
 * An item's newest typed version gives its type to the versions created after it. For
 * each open typed version the names it already holds that the schema tracks (required,
 * or not repeatable) are kept too, as a write's slices cannot see one another's.
 */
export class SchemaBindings {
  private readonly byVersion = new Map<string, Binding>();
  private readonly newestTyped = new Map<string, { version: number; type: string }>();
  /** Tracked names present, by version key, for typed versions written since start. */
  private readonly present = new Map<string, VersionNames | Promise<VersionNames>>();

  constructor(private readonly registry: SchemaRegistry | undefined) {}

  /** Every version's binding, as the store lists them (start-up, a new store). */
  load(list: StoredVersionInfo[]): void {
    this.present.clear();
    for (const v of list) if (v.binding) this.bound(v.itemId, v.version, v.binding);
  }

  /** The binding of a version, where the engine knows of one. */
  of(itemId: string, version: number): Binding | undefined {
    return this.byVersion.size === 0 ? undefined : this.byVersion.get(versionKey(itemId, version));
  }

  /** True when a write needs no schema: it names no type, and its item has none. */
  untyped(itemId: string, requested: string | undefined): boolean {
    return requested === undefined && (this.newestTyped.size === 0 || !this.newestTyped.has(itemId));
  }

  /**
   * The schema a write to the version checks against: its own binding if it has one (a
   * named type must be that one), else the named type's latest schema version, else the
   * type of the item's newest typed version, if older. Undefined: none.
   */
  gate(
    store: Store,
    itemId: string,
    version: number,
    requested: string | undefined,
  ): SchemaGate | undefined | Promise<SchemaGate | undefined> {
    const key = versionKey(itemId, version);
    const known = this.byVersion.get(key);
    let binding = known;
    if (known) {
      if (requested !== undefined && requested !== known.type) {
        throw errors.typeMismatch(itemId, version, known.type, requested);
      }
    } else if (requested !== undefined) {
      binding = { type: requested, schemaVersion: this.latest(requested) };
    } else {
      const newest = this.newestTyped.get(itemId);
      if (newest && newest.version < version) binding = { type: newest.type, schemaVersion: this.latest(newest.type) };
    }
    if (!binding) return undefined;
    const { ref, schema } = this.compiled(binding);
    const bind = binding;
    const made = (present: VersionNames) =>
      new SchemaGate(bind, ref, schema, present, () => this.bound(itemId, version, bind));
    // Usually the names are at hand: no wait (a small append pays for every await).
    const present = this.presentNames(store, key, itemId, version, known !== undefined);
    return present instanceof Promise ? present.then(made) : made(present);
  }

  /** A write under `binding` was taken by the store: the version has it. */
  bound(itemId: string, version: number, binding: Binding): void {
    this.byVersion.set(versionKey(itemId, version), binding);
    const newest = this.newestTyped.get(itemId);
    if (!newest || newest.version <= version) this.newestTyped.set(itemId, { version, type: binding.type });
  }

  /** A sealed version takes no more writes: its names are not needed. */
  committed(itemId: string, version: number, state: VersionState): void {
    if (state.kind === "sealed" && this.present.size > 0) this.present.delete(versionKey(itemId, version));
  }

  private latest(type: string): number {
    if (!this.registry) throw errors.unknownType(type);
    try {
      return this.registry.versions(type);
    } catch (err) {
      if (err instanceof DbError && err.code === "schema_not_found") throw errors.unknownType(type);
      throw err;
    }
  }

  private readonly schemas = new Map<string, { ref: SchemaRef; schema: CompiledSchema }>();

  private compiled(b: Binding): { ref: SchemaRef; schema: CompiledSchema } {
    const key = `${b.type}@${b.schemaVersion}`;
    let c = this.schemas.get(key);
    if (c) return c;
    let ref: SchemaRef;
    try {
      if (!this.registry) throw errors.schemaNotFound(b.type);
      ref = { key, doc: this.registry.get(b.type, b.schemaVersion).doc };
    } catch {
      // The data directory lost a schema file its versions are bound to: refuse, never write unchecked.
      throw errors.internal(`schema ${b.type} version ${b.schemaVersion} cannot be read from DATA_DIR/schemas`);
    }
    c = { ref, schema: compiledSchema(ref) };
    this.schemas.set(key, c);
    return c;
  }

  /**
   * The tracked names the version holds: none for a version this write creates, else
   * read from the store's index once and then kept up to date by the writes.
   */
  private presentNames(
    store: Store,
    key: string,
    itemId: string,
    version: number,
    exists: boolean,
  ): VersionNames | Promise<VersionNames> {
    const held = this.present.get(key);
    if (held) return held;
    if (!exists) {
      const fresh: VersionNames = { committed: new Set(), inFlight: new Map() };
      this.present.set(key, fresh);
      return fresh;
    }
    const loading = store.properties(itemId, version, { latest: true }).then(({ entries }) => {
      const names: VersionNames = { committed: new Set(entries.map((e) => e.name)), inFlight: new Map() };
      if (this.present.get(key) === loading) this.present.set(key, names);
      return names;
    });
    this.present.set(key, loading);
    loading.catch(() => this.present.delete(key));
    return loading;
  }
}

/**
 * The tracked names of one version: those its store has taken, and those admitted for
 * appends not answered yet (by count). A repeat is judged against both, so two writers
 * cannot each add a name that may occur once; a seal only against what was taken, and
 * the sealing writer's own appends, which the store commits before the seal.
 */
interface VersionNames {
  committed: Set<string>;
  inFlight: Map<string, number>;
}

/**
 * One write's schema: what the parser checks each property against, and what only the
 * engine can check, across the version: a second occurrence of a name that may occur
 * once, and the required names at a seal.
 */
export class SchemaGate {
  constructor(
    readonly binding: Binding,
    readonly ref: SchemaRef,
    private readonly schema: CompiledSchema,
    private readonly names: VersionNames,
    /** The store took a write under the binding: the version has it. */
    private readonly onStored: () => void,
  ) {}

  private isStored = false;
  /** Names this write admitted whose appends are not answered yet. */
  private readonly mine = new Map<string, number>();

  /**
   * A parsed slice, as it may be appended: whole, or cut before the first property that
   * repeats a name the version already holds (or another append in flight does), with
   * that violation as its error; and the names it admits, for settle() once the store
   * answers its append.
   */
  admit(out: ParseOutput): { out: ParseOutput; names: string[] } {
    const seen = out.seen;
    if (!seen || seen.length === 0) return { out, names: [] };
    let cut = -1;
    for (const s of seen) {
      if (this.held(s.name) && this.schema.unique(s.name)) {
        cut = s.index;
        out = cutSlice(out, cut, errors.repeatedProperty(s.name, s));
        break;
      }
    }
    const names: string[] = [];
    for (const s of seen) if (cut < 0 || s.index < cut) names.push(s.name);
    for (const n of names) {
      bump(this.names.inFlight, n, 1);
      bump(this.mine, n, 1);
    }
    return { out, names };
  }

  /** The store answered the append that carried `names`: taken (`ok`) or not. */
  settle(names: string[], ok: boolean): void {
    for (const n of names) {
      bump(this.names.inFlight, n, -1);
      bump(this.mine, n, -1);
      if (ok) this.names.committed.add(n);
    }
  }

  private held(name: string): boolean {
    return this.names.committed.has(name) || this.names.inFlight.has(name);
  }

  /** True when admit would cut the slice (checked before a whole body takes the short path). */
  wouldCut(out: ParseOutput): boolean {
    return out.seen?.some((s) => this.held(s.name) && this.schema.unique(s.name)) ?? false;
  }

  /** The required names the version lacks: taken by the store, or in this write's own appends. */
  missing(): string[] {
    return this.schema.required.filter((n) => !this.names.committed.has(n) && !this.mine.has(n));
  }

  /** The store took one of the write's requests. */
  stored(): void {
    if (this.isStored) return;
    this.isStored = true;
    this.onStored();
  }
}

function bump(counts: Map<string, number>, name: string, by: number): void {
  const n = (counts.get(name) ?? 0) + by;
  if (n > 0) counts.set(name, n);
  else counts.delete(name);
}

/** The slice's first `n` properties, ending with `error`. */
function cutSlice(out: ParseOutput, n: number, error: DbError): ParseOutput {
  const p = out.props;
  let bytes = 0;
  for (let i = 0; i < n; i++) bytes += p.lengths[i];
  const props: SliceProps = {
    count: n,
    names: p.names,
    nameIds: p.nameIds.slice(0, n),
    types: p.types.slice(0, n),
    lengths: p.lengths.slice(0, n),
  };
  return {
    ...out,
    out: out.out.subarray(0, bytes),
    props,
    error: { code: error.code, message: error.message, details: error.details },
  };
}
