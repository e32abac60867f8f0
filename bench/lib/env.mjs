// Knobs from the environment, with the values as defaults. Every knob read is
// remembered so that the JSON summary says what settings a run used.
export const knobsUsed = {};

export function knob(name, fallback) {
  const raw = process.env[name];
  const value = raw === undefined || raw === "" ? fallback : Number(raw);
  if (!Number.isFinite(value)) throw new Error(`${name}=${raw} is not a number`);
  knobsUsed[name] = value;
  return value;
}
