// Runs one server for one measurement: start it, hand it to `fn`, and always stop it and
// delete its data dir. A server that died on its own, would not stop, or logged errors is
// written into the report's notes with its output.
import { removeDir } from "./cleanup.mjs";

const QUIET = /listening on|shutting down|^\s*$/;

export async function withServer(report, starting, fn, { keepDataDir = false } = {}) {
  const server = await starting;
  const t0 = performance.now();
  console.log(`   ${server.name} pid ${server.pid} at ${server.url} ...`);
  try {
    return await fn(server);
  } finally {
    console.log(`   ... ${server.name} done in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    const diedEarly = server.exitInfo;
    const info = await server.stop();
    const tail = info.output.trim().split("\n").slice(-20).join("\n");
    if (diedEarly) {
      report.note(
        `${server.name} EXITED during the run (code ${diedEarly.code}, signal ${diedEarly.signal}):\n${tail}`,
      );
    } else if (info.killed) {
      report.note(`${server.name} did not exit within 5 s of SIGTERM and was killed`);
    } else if (info.code !== 0) {
      report.note(`${server.name} exited with code ${info.code} (signal ${info.signal}) on SIGTERM:\n${tail}`);
    }
    const noisy = info.output.split("\n").filter((l) => !QUIET.test(l));
    if (!diedEarly && noisy.length > 0 && server.name.startsWith("stream-db")) {
      report.note(`${server.name} logged ${noisy.length} line(s), e.g.:\n${noisy.slice(0, 5).join("\n")}`);
    }
    if (server.dataDir && !keepDataDir) removeDir(server.dataDir);
  }
}
