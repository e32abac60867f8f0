// Starts a server as a separate process and waits for the line that carries its URL.
// Each process runs under `sh -c 'ulimit -n N; exec node ...'` so that it may hold many
// sockets; exec keeps the pid, so the pid we hold is the node process itself.
import { spawn } from "node:child_process";
import { trackChild } from "./cleanup.mjs";

export const NOFILE = Number(process.env.BENCH_NOFILE ?? 65536);
const TAIL = 8192;

/** `sh -c` prefix that raises the fd limit as far as it can go, then execs node with args. */
export function nodeWithUlimit(args, options = {}) {
  const script = `ulimit -n ${NOFILE} 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null; exec "$0" "$@"`;
  return trackChild(spawn("/bin/sh", ["-c", script, process.execPath, ...args], options));
}

/**
 * Spawn `node ...args`, resolve when stdout prints `listening on http://HOST:PORT`.
 * Returns { name, pid, url, child, output(), exited, stop() }. Rejects with the output if
 * the process exits or stays silent for `timeoutMs`.
 */
export function startServer(name, args, { env, timeoutMs = 30_000, cwd } = {}) {
  const t0 = performance.now();
  const child = nodeWithUlimit(args, { cwd, env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  const keep = (chunk) => {
    out = (out + chunk.toString()).slice(-TAIL);
  };
  child.stderr.on("data", keep);
  const exited = new Promise((resolve) => child.once("exit", (code, signal) => resolve({ code, signal })));
  const server = {
    name,
    pid: child.pid,
    child,
    exited,
    exitInfo: null,
    output: () => out,
    url: null,
    readyMs: null,
    stop: () => stopProcess(server),
  };
  exited.then((info) => {
    server.exitInfo = info;
  });
  return new Promise((resolve, reject) => {
    let buffered = "";
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`${name}: no "listening" line within ${timeoutMs} ms\n${out}`));
    }, timeoutMs);
    child.stdout.on("data", (chunk) => {
      keep(chunk);
      if (server.url) return;
      buffered += chunk.toString();
      const m = /listening on (http:\/\/[^\s]+)/.exec(buffered);
      if (m) {
        clearTimeout(timer);
        server.url = m[1].replace(/\/$/, "");
        server.readyMs = performance.now() - t0;
        resolve(server);
      }
    });
    exited.then(({ code, signal }) => {
      clearTimeout(timer);
      if (!server.url) reject(new Error(`${name} exited (code ${code}, signal ${signal}) before listening\n${out}`));
    });
  });
}

/** SIGTERM, wait up to `graceMs`, then SIGKILL. Resolves { code, signal, killed, output }. */
export async function stopProcess(server, graceMs = 5000) {
  const { child } = server;
  if (child.exitCode === null && child.signalCode === null) {
    child.kill("SIGTERM");
    const timer = setTimeout(() => child.kill("SIGKILL"), graceMs);
    await server.exited;
    clearTimeout(timer);
  }
  const info = await server.exited;
  return { ...info, killed: info.signal === "SIGKILL", output: server.output() };
}
