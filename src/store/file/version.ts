import type { PropertyIndex } from "../../format/property-index.js";
import type { Binding } from "../types.js";

/**
 * The storage worker's in-memory view of one version. `size` runs ahead of `committed`
 * between a write and the sync that covers it; readers and the .meta file only ever see
 * `committed`. `index` holds only what the .meta file does not have yet.
 */

export class Version {
  /** Write handle; -1 once sealed and closed. */
  fd = -1;
  /** Bytes written to the file (committed plus what awaits the next sync). */
  size: number;
  committed: number;
  sealed: boolean;
  /** Set when a newer version sealed this one: writers then get version_superseded. */
  superseded = false;
  slot = -1;
  /** Write requests holding it loaded (begun, not yet finished or dropped). */
  writers = 0;
  metaDirty = false;
  /** performance.now() before which the lag writer leaves this .meta alone. */
  metaDueAt = 0;
  /**
   * How many properties the .meta file on disk indexes (0: none usable); `index` holds
   * the ones after them.
   */
  metaCount = 0;
  updatedAt: string;
  /** The schema the version is pinned to, from its creation on (in its .meta). */
  binding: Binding | undefined = undefined;

  constructor(
    readonly itemId: string,
    readonly version: number,
    readonly key: string,
    readonly createdAt: string,
    size: number,
    sealed: boolean,
    readonly index: PropertyIndex,
  ) {
    this.size = size;
    this.committed = size;
    this.sealed = sealed;
    this.updatedAt = createdAt;
  }
}
