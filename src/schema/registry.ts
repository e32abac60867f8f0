import {
  closeSync,
  fsyncSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  writeSync,
} from "node:fs";
import { dirname, join } from "node:path";
import { errors } from "../core/errors.js";
import type { Log } from "../core/log.js";
import { parseItemId } from "../core/names.js";
import { incompatibleChanges } from "./compatibility.js";
import { parseSchemaDocument, type SchemaDocument } from "./schema-document.js";

/**
 * The schema registry (README, "Schemas"): every version of every type's schema, in
 * DATA_DIR/schemas/{type}.json, replaced atomically (temp file, fsync, rename, fsync of
 * the directory) as .meta files are, so a registered version survives a crash once it is
 * answered. All of it is held in memory: schemas are few and small.
 */

interface TypeFile {
  type: string;
  /** The documents as registered (JSON text), version n at index n - 1. */
  versions: string[];
}

export interface Registered {
  type: string;
  version: number;
  /** false: the document equals the latest version, which is the answer. */
  created: boolean;
}

export class SchemaRegistry {
  private readonly types = new Map<string, { file: TypeFile; docs: SchemaDocument[] }>();

  private constructor(private readonly dir: string) {}

  static open(dataDir: string, log: Log): SchemaRegistry {
    const dir = join(dataDir, "schemas");
    const registry = new SchemaRegistry(dir);
    // Made by the first registration: a data directory without schemas has no such folder.
    let names: string[] = [];
    try {
      names = readdirSync(dir);
    } catch {}
    for (const name of names) {
      if (name.endsWith(".tmp")) {
        rmSync(join(dir, name), { force: true });
        continue;
      }
      if (!name.endsWith(".json")) continue;
      try {
        const file = JSON.parse(readFileSync(join(dir, name), "utf8")) as TypeFile;
        registry.types.set(file.type, { file, docs: file.versions.map(parseSchemaDocument) });
      } catch (err) {
        log.error(`schemas/${name} cannot be read (${(err as Error).message}); its type is left out`);
      }
    }
    return registry;
  }

  /** Registers `text` as the type's next version, unless it equals the latest. */
  register(type: string, text: string): Registered {
    parseItemId(type);
    const doc = parseSchemaDocument(text);
    const known = this.types.get(type);
    if (known) {
      const latest = known.docs[known.docs.length - 1];
      if (canonical(latest) === canonical(doc)) return { type, version: known.docs.length, created: false };
      const mode = doc.compatibility ?? latest.compatibility ?? "backward";
      const changes = incompatibleChanges(latest, doc, mode);
      if (changes.length > 0) throw errors.schemaIncompatible(mode, changes);
    }
    const file: TypeFile = { type, versions: [...(known?.file.versions ?? []), JSON.stringify(JSON.parse(text))] };
    this.write(file);
    this.types.set(type, { file, docs: [...(known?.docs ?? []), doc] });
    return { type, version: file.versions.length, created: true };
  }

  /** Every type, with its number of versions, in name order. */
  list(): { type: string; versions: number }[] {
    return [...this.types.values()]
      .map((t) => ({ type: t.file.type, versions: t.file.versions.length }))
      .sort((a, b) => (a.type < b.type ? -1 : a.type > b.type ? 1 : 0));
  }

  versions(type: string): number {
    const t = this.types.get(type);
    if (!t) throw errors.schemaNotFound(type);
    return t.file.versions.length;
  }

  /** Version `n` (from 1) as registered, and parsed. */
  get(type: string, n: number): { text: string; doc: SchemaDocument } {
    const t = this.types.get(type);
    if (!t) throw errors.schemaNotFound(type);
    if (!(n >= 1 && n <= t.docs.length)) throw errors.schemaNotFound(type, n);
    return { text: t.file.versions[n - 1], doc: t.docs[n - 1] };
  }

  private write(file: TypeFile): void {
    const made = mkdirSync(this.dir, { recursive: true }) !== undefined;
    const path = join(this.dir, `${file.type}.json`);
    const tmp = `${path}.tmp`;
    const fd = openSync(tmp, "w");
    try {
      writeSync(fd, `${JSON.stringify(file)}\n`);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, path);
    syncDir(this.dir);
    // A folder just made is an entry of the data directory too.
    if (made) syncDir(dirname(this.dir));
  }
}

/** A document's rules with object keys in order: what "the same document" compares. */
function canonical(doc: SchemaDocument): string {
  const sort = (v: unknown): unknown =>
    Array.isArray(v)
      ? v.map(sort)
      : v && typeof v === "object"
        ? Object.fromEntries(
            Object.entries(v)
              .filter(([, x]) => x !== undefined)
              .sort(([a], [b]) => (a < b ? -1 : 1))
              .map(([k, x]) => [k, sort(x)]),
          )
        : v;
  return JSON.stringify(sort(doc));
}

function syncDir(dir: string): void {
  const fd = openSync(dir, "r");
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}
