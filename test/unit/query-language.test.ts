import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { DbError } from "../../dist/core/errors.js";
import { type Expr, type Literal, parseQuery } from "../../dist/index/query-language.js";

/**
 * The filter language's parser: random expressions printed (keywords in random case,
 * names plain or backquoted) parse back to themselves; random text is either a query or
 * invalid_query with a position inside it, never anything else.
 */

const plainName = fc.stringMatching(/^[A-Za-z_][A-Za-z0-9_.-]{0,8}$/);
const anyName = fc.string({ minLength: 1, maxLength: 8 });
const literal: fc.Arbitrary<Literal> = fc.oneof(
  fc.string({ maxLength: 10 }).map((text) => ({ type: "string" as const, text })),
  fc
    .tuple(fc.integer({ min: -1e6, max: 1e6 }), fc.constantFrom("", ".5", "e10", ".25E-3"))
    .map(([n, tail]) => ({ type: "number" as const, text: `${n}${tail}` })),
  fc.constantFrom("true", "false").map((text) => ({ type: "boolean" as const, text })),
  fc.constantFrom("2024-01-15T10:30:00Z", "2024-02-29T23:59:59.123+02:00").map((text) => ({
    type: "datetime" as const,
    text,
  })),
);
const op = fc.constantFrom("=", "!=", "<", "<=", ">", ">=");

const expr: fc.Arbitrary<Expr> = fc.letrec((tie) => ({
  leaf: fc.oneof(
    fc
      .tuple(fc.oneof(plainName, anyName), op, literal)
      .map(([name, o, lit]) => ({ kind: "cmp", name, op: o, lit }) as Expr),
    fc.oneof(plainName, anyName).map((name) => ({ kind: "exists", name }) as Expr),
    fc
      .tuple(plainName, fc.array(literal, { minLength: 1, maxLength: 4 }))
      .map(([name, lits]) => ({ kind: "in", name, lits }) as Expr),
    fc
      .tuple(plainName, fc.string({ maxLength: 6 }))
      .map(([name, prefix]) => ({ kind: "prefix", name, prefix }) as Expr),
  ),
  node: fc.oneof(
    { depthSize: "small" },
    tie("leaf"),
    fc.array(tie("node"), { minLength: 2, maxLength: 3 }).map((items) => ({ kind: "and", items }) as Expr),
    fc.array(tie("node"), { minLength: 2, maxLength: 3 }).map((items) => ({ kind: "or", items }) as Expr),
    tie("node").map((item) => ({ kind: "not", item }) as Expr),
  ),
})).node;

const kw = (word: string, upper: boolean) => (upper ? word : word.toLowerCase());
const name = (n: string) =>
  /^[A-Za-z_][A-Za-z0-9_.-]*$/.test(n) && !/^(and|or|not|exists|in|prefix)$/i.test(n)
    ? n
    : `\`${n.replace(/`/g, "``")}\``;
const lit = (l: Literal) => (l.type === "string" ? JSON.stringify(l.text) : l.text);

function print(e: Expr, upper: boolean): string {
  switch (e.kind) {
    case "and":
      return e.items.map((x) => `(${print(x, upper)})`).join(` ${kw("AND", upper)} `);
    case "or":
      return e.items.map((x) => `(${print(x, upper)})`).join(` ${kw("OR", upper)} `);
    case "not":
      return `${kw("NOT", upper)} (${print(e.item, upper)})`;
    case "exists":
      return `${kw("EXISTS", upper)} ${name(e.name)}`;
    case "cmp":
      return `${name(e.name)} ${e.op} ${lit(e.lit)}`;
    case "in":
      return `${name(e.name)} ${kw("IN", upper)} [${e.lits.map(lit).join(", ")}]`;
    case "prefix":
      return `${name(e.name)} ${kw("PREFIX", upper)} ${JSON.stringify(e.prefix)}`;
  }
}

describe("the query language", () => {
  it("parses what it prints", () => {
    fc.assert(
      fc.property(expr, fc.boolean(), (e, upper) => {
        expect(parseQuery(print(e, upper))).toEqual(e);
      }),
      { numRuns: 1500 },
    );
  });

  it("refuses anything else with invalid_query and a position inside the text", () => {
    const tokens = fc.constantFrom(
      "a",
      "`b`",
      "=",
      "!=",
      "<",
      "AND",
      "or",
      "NOT",
      "(",
      ")",
      "[",
      "]",
      ",",
      '"x"',
      "1",
      "-",
      "1e",
      "true",
      "IN",
      "PREFIX",
      "EXISTS",
      " ",
      "2024-01-15T10:30:00Z",
      "2024-02-30T00:00:00Z",
      '"\\q"',
      "`",
    );
    fc.assert(
      fc.property(
        fc.oneof(
          fc.string({ maxLength: 40 }),
          fc.array(tokens, { maxLength: 12 }).map((t) => t.join("")),
        ),
        (text) => {
          try {
            parseQuery(text);
          } catch (err) {
            expect(err).toBeInstanceOf(DbError);
            expect((err as DbError).code).toBe("invalid_query");
            const at = (err as DbError).details.position as number;
            expect(at).toBeGreaterThanOrEqual(0);
            expect(at).toBeLessThanOrEqual(text.length);
          }
        },
      ),
      { numRuns: 5000 },
    );
  });

  it("refuses queries over 4 KiB, nested deeper than 32, or with an IN of more than 256", () => {
    const code = (text: string) => {
      try {
        parseQuery(text);
        return "ok";
      } catch (err) {
        return (err as DbError).code;
      }
    };
    expect(code(`a = "${"x".repeat(4100)}"`)).toBe("invalid_query");
    expect(code(`${"(".repeat(31)}a = 1${")".repeat(31)}`)).toBe("ok");
    expect(code(`${"(".repeat(40)}a = 1${")".repeat(40)}`)).toBe("invalid_query");
    expect(code(`${"NOT ".repeat(40)}a = 1`)).toBe("invalid_query");
    expect(code(`a IN [${Array.from({ length: 256 }, (_, i) => i).join(",")}]`)).toBe("ok");
    expect(code(`a IN [${Array.from({ length: 257 }, (_, i) => i).join(",")}]`)).toBe("invalid_query");
    expect(code("a = 2024-02-30T00:00:00Z")).toBe("invalid_query");
    expect(code("`a``b` = 1 and EXISTS x")).toBe("ok");
  });
});
