// /proc sampling of a process by pid: CPU time (utime+stime, every thread) and RSS.
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";

let clkTck = 100;
try {
  clkTck = Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).trim()) || 100;
} catch {}

/** CPU milliseconds (user + system) the process has used so far; NaN if it is gone. */
export function cpuMs(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    // fields[0] is field 3 (state); utime is field 14, stime field 15.
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / clkTck;
  } catch {
    return Number.NaN;
  }
}

/** Resident set size in bytes (VmRSS); NaN if the process is gone. */
export function rssBytes(pid) {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    return m ? Number(m[1]) * 1024 : Number.NaN;
  } catch {
    return Number.NaN;
  }
}

/** Samples RSS every `intervalMs` and keeps the peak, plus CPU time between start and stop. */
export class ProcMeter {
  constructor(pid, intervalMs = 50) {
    this.pid = pid;
    this.intervalMs = intervalMs;
    this.peakRss = 0;
    this.timer = null;
  }

  start() {
    this.cpu0 = cpuMs(this.pid);
    this.t0 = performance.now();
    this.rss0 = rssBytes(this.pid);
    this.peakRss = this.rss0;
    this.timer = setInterval(() => this.sample(), this.intervalMs);
    return this;
  }

  sample() {
    const rss = rssBytes(this.pid);
    if (rss > this.peakRss) this.peakRss = rss;
    return rss;
  }

  /** { cpuMs, wallMs, rssStart, rssEnd, peakRss } over the measured span. */
  stop() {
    clearInterval(this.timer);
    const rssEnd = this.sample();
    return {
      cpuMs: cpuMs(this.pid) - this.cpu0,
      wallMs: performance.now() - this.t0,
      rssStart: this.rss0,
      rssEnd,
      peakRss: this.peakRss,
    };
  }
}
