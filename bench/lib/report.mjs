// A scenario's result: a table (ratio first), the targets met or missed, and notes.
import { fmtRatio } from "./stats.mjs";

export class Report {
  constructor(scenario, criteria) {
    this.scenario = scenario;
    this.criteria = criteria;
    this.tables = [];
    this.targets = [];
    this.notes = [];
    this.raw = {};
  }

  /** Starts a table; rows go to the newest one. */
  table(columns, title = "") {
    this.tables.push({ title, columns, rows: [] });
    return this;
  }

  row(cells) {
    this.tables.at(-1).rows.push(cells);
    return this;
  }

  /** `value` is the measured ratio or figure; `met` says whether the target holds. */
  target(what, value, met) {
    this.targets.push({ what, value, met: Boolean(met) });
    return this;
  }

  note(text) {
    this.notes.push(text);
    return this;
  }

  print(out = console.log) {
    out(`\n== ${this.scenario} ==`);
    for (const t of this.tables) {
      if (t.title) out(t.title);
      const cells = [t.columns, ...t.rows].map((r) => r.map((c) => (c === undefined ? "" : String(c))));
      const widths = t.columns.map((_, i) => Math.max(...cells.map((r) => (r[i] ?? "").length)));
      const line = (r) => `| ${r.map((c, i) => (c ?? "").padEnd(widths[i])).join(" | ")} |`;
      out(line(cells[0]));
      out(`|${widths.map((w) => "-".repeat(w + 2)).join("|")}|`);
      for (const r of cells.slice(1)) out(line(r));
    }
    for (const t of this.targets) out(`  ${t.met ? "MET   " : "MISSED"} ${t.what}: ${t.value}`);
    for (const n of this.notes) out(`  note: ${n}`);
  }

  toJSON() {
    const { scenario, criteria, tables, targets, notes, raw } = this;
    return { scenario, criteria, tables, targets, notes, raw };
  }
}

export { fmtRatio };
