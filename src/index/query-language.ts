import { errors } from "../core/errors.js";

/**
 * The filter language of GET /query (README, "Queries"), parsed by recursive descent:
 *   expr    := term ("OR" term)*
 *   term    := factor ("AND" factor)*
 *   factor  := "NOT" factor | "(" expr ")" | "EXISTS" name | name op literal
 *            | name "IN" "[" literal ("," literal)* "]" | name "PREFIX" string
 * Keywords in any case; a name is [A-Za-z_][A-Za-z0-9_.-]* or backquoted (`` for `);
 * literals are JSON strings, JSON-style numbers, true/false, and unquoted RFC 3339
 * date-times. Every refusal is invalid_query with the 0-based position it was found at.
 */

export type Op = "=" | "!=" | "<" | "<=" | ">" | ">=";
export type LiteralType = "string" | "number" | "boolean" | "datetime";

export interface Literal {
  type: LiteralType;
  /** The value as a property of that type stores it (a string unescaped). */
  text: string;
}

export type Expr =
  | { kind: "or"; items: Expr[] }
  | { kind: "and"; items: Expr[] }
  | { kind: "not"; item: Expr }
  | { kind: "exists"; name: string }
  | { kind: "cmp"; name: string; op: Op; lit: Literal }
  | { kind: "in"; name: string; lits: Literal[] }
  | { kind: "prefix"; name: string; prefix: string };

export const MAX_QUERY_BYTES = 4096;
export const MAX_DEPTH = 32;
export const MAX_IN = 256;

const NAME = /[A-Za-z_][A-Za-z0-9_.-]*/y;
const NUMBER = /-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?/y;
const DATETIME = /[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?([Zz]|[+-][0-9]{2}:[0-9]{2})/y;
// biome-ignore lint/suspicious/noControlCharactersInRegex: a JSON string may not hold raw control characters
const STRING = /"(?:[^"\\\u0000-\u001f]|\\(?:["\\/bfnrt]|u[0-9a-fA-F]{4}))*"/y;
const WORD = /[A-Za-z]+/y;
const OP = /!=|<=|>=|=|<|>/y;

export function parseQuery(text: string): Expr {
  if (Buffer.byteLength(text) > MAX_QUERY_BYTES) {
    throw errors.invalidQuery(`the query is longer than ${MAX_QUERY_BYTES} bytes`, MAX_QUERY_BYTES);
  }
  return new Parser(text).parse();
}

class Parser {
  private at = 0;
  private depth = 0;

  constructor(private readonly text: string) {}

  parse(): Expr {
    this.space();
    if (this.at >= this.text.length) this.fail("expected a condition");
    const e = this.expr();
    this.space();
    if (this.at < this.text.length) this.fail("expected AND, OR or the end of the query");
    return e;
  }

  private expr(): Expr {
    const items = [this.term()];
    while (this.keyword("OR")) items.push(this.term());
    return items.length === 1 ? items[0] : { kind: "or", items };
  }

  private term(): Expr {
    const items = [this.factor()];
    while (this.keyword("AND")) items.push(this.factor());
    return items.length === 1 ? items[0] : { kind: "and", items };
  }

  private factor(): Expr {
    this.space();
    if (++this.depth > MAX_DEPTH) this.fail(`the query is nested deeper than ${MAX_DEPTH}`);
    try {
      if (this.keyword("NOT")) return { kind: "not", item: this.factor() };
      if (this.punct("(")) {
        const e = this.expr();
        if (!this.punct(")")) this.fail("expected )");
        return e;
      }
      if (this.keyword("EXISTS")) return { kind: "exists", name: this.name() };
      const name = this.name();
      if (this.keyword("IN")) return { kind: "in", name, lits: this.list() };
      if (this.keyword("PREFIX")) {
        this.space();
        const lit = this.literal();
        if (lit.type !== "string") this.fail("PREFIX takes a string", this.last);
        return { kind: "prefix", name, prefix: lit.text };
      }
      this.space();
      const op = this.match(OP);
      if (op === null) this.fail("expected =, !=, <, <=, >, >=, IN or PREFIX");
      this.space();
      return { kind: "cmp", name, op: op as Op, lit: this.literal() };
    } finally {
      this.depth--;
    }
  }

  private list(): Literal[] {
    if (!this.punct("[")) this.fail("expected [");
    const lits: Literal[] = [];
    do {
      this.space();
      if (lits.length === MAX_IN) this.fail(`IN takes at most ${MAX_IN} literals`);
      lits.push(this.literal());
    } while (this.punct(","));
    if (!this.punct("]")) this.fail("expected , or ]");
    return lits;
  }

  /** Where the last literal began, for errors about it. */
  private last = 0;

  private literal(): Literal {
    this.last = this.at;
    const c = this.text[this.at];
    if (c === '"') {
      const raw = this.match(STRING);
      if (raw === null) this.fail("a string that does not end, or a bad escape");
      return { type: "string", text: JSON.parse(raw as string) };
    }
    if (c !== undefined && /[0-9-]/.test(c)) {
      const dt = this.match(DATETIME);
      if (dt !== null) {
        if (!validDatetime(dt)) this.fail("that date-time does not exist", this.last);
        return { type: "datetime", text: dt };
      }
      const n = this.match(NUMBER);
      if (n !== null && !this.wordGoesOn()) {
        if (!Number.isFinite(Number(n))) this.fail("the number is out of range", this.last);
        return { type: "number", text: n };
      }
      this.at = this.last;
      this.fail("expected a literal: a number, a string, true, false or a date-time");
    }
    const word = this.peekWord();
    if (word === "true" || word === "false") {
      this.at += word.length;
      return { type: "boolean", text: word };
    }
    this.fail("expected a literal: a number, a string, true, false or a date-time");
  }

  private name(): string {
    this.space();
    if (this.text[this.at] === "`") {
      let out = "";
      for (let i = this.at + 1; i < this.text.length; i++) {
        if (this.text[i] !== "`") {
          out += this.text[i];
          continue;
        }
        if (this.text[i + 1] === "`") {
          out += "`";
          i++;
          continue;
        }
        if (out === "") this.fail("a backquoted name is empty");
        this.at = i + 1;
        return out;
      }
      this.fail("a backquoted name does not end");
    }
    const name = this.match(NAME);
    if (name === null) this.fail("expected a property name");
    return name as string;
  }

  /** Consumes a keyword (any case) that is not the start of a longer name. */
  private keyword(kw: string): boolean {
    this.space();
    const word = this.peekWord();
    if (word?.toUpperCase() !== kw) return false;
    const after = this.text[this.at + word.length];
    if (after !== undefined && /[A-Za-z0-9_.-]/.test(after)) return false;
    this.at += word.length;
    return true;
  }

  private peekWord(): string | null {
    WORD.lastIndex = this.at;
    return WORD.exec(this.text)?.[0] ?? null;
  }

  private wordGoesOn(): boolean {
    const c = this.text[this.at];
    return c !== undefined && /[A-Za-z0-9_.]/.test(c);
  }

  private punct(p: string): boolean {
    this.space();
    if (this.text[this.at] !== p) return false;
    this.at++;
    return true;
  }

  private match(re: RegExp): string | null {
    re.lastIndex = this.at;
    const m = re.exec(this.text);
    if (!m) return null;
    this.at += m[0].length;
    return m[0];
  }

  private space(): void {
    while (this.at < this.text.length && /\s/.test(this.text[this.at])) this.at++;
  }

  private fail(message: string, at = this.at): never {
    throw errors.invalidQuery(message, at);
  }
}

function validDatetime(text: string): boolean {
  const [y, mo, d, h, mi, s] =
    text
      .match(/[0-9]+/g)
      ?.slice(0, 6)
      .map(Number) ?? [];
  const days = [31, y % 4 === 0 && (y % 100 !== 0 || y % 400 === 0) ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
  const zone = /([+-])([0-9]{2}):([0-9]{2})$/.exec(text);
  if (zone && (Number(zone[2]) > 23 || Number(zone[3]) > 59)) return false;
  return mo >= 1 && mo <= 12 && d >= 1 && d <= days[mo - 1] && h <= 23 && mi <= 59 && s <= 60;
}
