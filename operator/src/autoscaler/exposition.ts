// Prometheus text exposition format (version 0.0.4, as prometheus_client writes it for vLLM and
// SGLang). Measured against parse-prometheus-text-format 1.1.1, the npm parser of that name: it
// dropped the labels and _sum/_count of a histogram whose `le` label sits between other labels
// (vLLM's order), so a small parser lives here instead. Pure; throws ExpositionError naming the line.
// It walks the UTF-8 bytes by index: a scrape's body is parsed as it came off the socket, never made
// into a string (a 35 KB string per pod per window was the scrape path's largest allocation), and
// with a SeriesFilter a line of a series not kept is recognised from its bytes and skipped without
// allocating anything (most of an engine's /metrics is not read). A text given as a string is
// encoded first.

export interface Sample {
  /** Series name as written, suffix included (e.g. vllm:generation_tokens_total, ..._bucket). */
  name: string;
  labels: Record<string, string>;
  value: number;
}

export interface Exposition {
  samples: Sample[];
  /** `# TYPE` declarations by family name. */
  types: Map<string, string>;
}

export class ExpositionError extends Error {
  readonly line: number;
  constructor(line: number, message: string) {
    super(`metrics text line ${line}: ${message}`);
    this.name = "ExpositionError";
    this.line = line;
  }
}

type Bytes = Buffer;

/** A range of the bytes as a string of its own (never a view that keeps the body alive). */
const decode = (bytes: Bytes, start: number, end: number) => bytes.toString("utf8", start, end);
const encode = (s: string) => Buffer.from(s, "utf8");

/** FNV-1a over a range of bytes, kept to a small integer (a Map key V8 stores unboxed). */
function hashRange(bytes: Bytes, start: number, end: number): number {
  let h = 0x811c9dc5 | 0;
  for (let i = start; i < end; i++) h = Math.imul(h ^ (bytes[i] as number), 16777619);
  return h & 0x3fffffff;
}

function sameBytes(key: Bytes, bytes: Bytes, start: number, end: number): boolean {
  if (key.length !== end - start) return false;
  for (let k = 0; k < key.length; k++) if (key[k] !== bytes[start + k]) return false;
  return true;
}

interface RangeEntry<V> {
  key: Bytes;
  value: V;
}

/** Values found by a range of some bytes (their key), without decoding them. */
class RangeMap<V> {
  readonly #byHash = new Map<number, RangeEntry<V> | RangeEntry<V>[]>();
  size = 0;

  find(bytes: Bytes, start: number, end: number): V | undefined {
    const hit = this.#byHash.get(hashRange(bytes, start, end));
    if (hit === undefined) return undefined;
    if (!Array.isArray(hit)) return sameBytes(hit.key, bytes, start, end) ? hit.value : undefined;
    for (const e of hit) if (sameBytes(e.key, bytes, start, end)) return e.value;
    return undefined;
  }

  /** Adds the range's bytes (copied) as a key unless it is there. */
  add(bytes: Bytes, start: number, end: number, value: V) {
    if (this.find(bytes, start, end) !== undefined) return;
    const hash = hashRange(bytes, start, end);
    const hit = this.#byHash.get(hash);
    const entry = { key: Buffer.from(bytes.subarray(start, end)), value };
    this.#byHash.set(hash, hit === undefined ? entry : Array.isArray(hit) ? [...hit, entry] : [hit, entry]);
    this.size++;
  }
}

class RangeTable extends RangeMap<string> {
  addString(s: string) {
    const bytes = encode(s);
    this.add(bytes, 0, bytes.length, s);
  }
}

/** The series a parse keeps, matched on the bytes of each line (see parseExposition). */
export interface SeriesFilter {
  readonly series: RangeTable;
  /** Family names whose `# TYPE` is kept: a kept name, or one whose _total or _count is kept. */
  readonly families: RangeTable;
}

export function seriesFilter(names: Iterable<string>): SeriesFilter {
  const series = new RangeTable();
  const families = new RangeTable();
  for (const name of names) {
    series.addString(name);
    families.addString(name);
    for (const suffix of ["_total", "_count"])
      if (name.endsWith(suffix)) families.addString(name.slice(0, -suffix.length));
  }
  return { series, families };
}

/**
 * One shared copy of a name or label value: a value seen before (most are, scrape after scrape) is
 * found from its bytes without allocating at all.
 */
const interned = new RangeTable();
const INTERN_LIMIT = 50_000;
function internRange(bytes: Bytes, start: number, end: number): string {
  const hit = interned.find(bytes, start, end);
  if (hit !== undefined) return hit;
  const copy = decode(bytes, start, end);
  if (interned.size < INTERN_LIMIT) interned.add(bytes, start, end, copy);
  return copy;
}
function internString(s: string): string {
  const bytes = encode(s);
  return internRange(bytes, 0, bytes.length);
}
/**
 * Labels by the exact bytes between their braces, shared (frozen) by every sample written so: a
 * pod's series repeat their label sets scrape after scrape (and across pods of one model).
 */
const labelSets = new RangeMap<Readonly<Record<string, string>>>();
const LABEL_SETS_LIMIT = 50_000;
const NO_LABELS: Readonly<Record<string, string>> = Object.freeze({});

type Own = (bytes: Bytes, start: number, end: number) => string;

const SPACE = 32;
const TAB = 9;
const NEWLINE = 10;
const CR = 13;
const HASH = 35;
const QUOTE = 34;
const BACKSLASH = 92;
const COMMA = 44;
const EQUALS = 61;
const OPEN_BRACE = 123;
const CLOSE_BRACE = 125;
const isBlank = (c: number) => c === SPACE || c === TAB;
/** ASCII whitespace (what String.prototype.trim drops of ASCII). */
const isWhite = (c: number) => c === SPACE || (c >= TAB && c <= CR);
const isNameStart = (c: number) => (c >= 97 && c <= 122) || (c >= 65 && c <= 90) || c === 95 || c === 58; // a-z A-Z _ :
const isNameChar = (c: number) => isNameStart(c) || (c >= 48 && c <= 57);
const isLabelNameChar = (c: number) => isNameChar(c) && c !== 58;
const TYPE = encode("TYPE");

const POWERS_OF_TEN = Array.from({ length: 16 }, (_, k) => 10 ** k);

/**
 * A plain decimal (optional sign, digits, one optional point, at most 15 digits) read in place:
 * the integer of its digits is exact and so is 10^k for k < 16, so one division rounds correctly
 * (the same double Number() gives). Anything else is NaN here and left to parseNumber.
 */
function plainDecimal(bytes: Bytes, start: number, end: number): number {
  let i = start;
  const negative = bytes[i] === 45; // -
  if (negative || bytes[i] === 43) i++; // +
  if (i === end || end - i > 16) return Number.NaN;
  let digits = 0;
  let mantissa = 0;
  let fraction = -1;
  for (; i < end; i++) {
    const c = bytes[i] as number;
    if (c >= 48 && c <= 57) {
      mantissa = mantissa * 10 + (c - 48);
      digits++;
      if (fraction >= 0) fraction++;
    } else if (c === 46 && fraction < 0) fraction = 0;
    else return Number.NaN;
  }
  if (digits === 0 || digits > 15) return Number.NaN;
  const value = fraction > 0 ? mantissa / (POWERS_OF_TEN[fraction] as number) : mantissa;
  return negative ? -value : value;
}

function parseNumber(text: string, line: number): number {
  switch (text) {
    case "+Inf":
    case "Inf":
      return Number.POSITIVE_INFINITY;
    case "-Inf":
      return Number.NEGATIVE_INFINITY;
    case "NaN":
      return Number.NaN;
  }
  const value = Number(text);
  if (text === "" || Number.isNaN(value))
    throw new ExpositionError(line, `bad value ${JSON.stringify(text)}`);
  return value;
}

/** The index of `byte` in [from, end), or -1. */
function indexIn(bytes: Bytes, byte: number, from: number, end: number): number {
  for (let i = from; i < end; i++) if (bytes[i] === byte) return i;
  return -1;
}

/** Labels from just after `{` to `}` within [start, end); returns the index after `}`. */
function parseLabels(
  bytes: Bytes,
  start: number,
  end: number,
  lineStart: number,
  line: number,
  own: Own,
  labels: Record<string, string>,
): number {
  let i = start;
  for (;;) {
    while (i < end && (bytes[i] === SPACE || bytes[i] === COMMA)) i++;
    if (i < end && bytes[i] === CLOSE_BRACE) return i + 1;
    const nameStart = i;
    if (i < end && isNameStart(bytes[i] as number) && bytes[i] !== 58)
      while (i < end && isLabelNameChar(bytes[i] as number)) i++;
    if (i === nameStart) throw new ExpositionError(line, `bad label name at column ${i - lineStart + 1}`);
    const name = own(bytes, nameStart, i);
    while (i < end && bytes[i] === SPACE) i++;
    if (i + 1 >= end || bytes[i] !== EQUALS || bytes[i + 1] !== QUOTE)
      throw new ExpositionError(line, `label ${name} needs ="value"`);
    i += 2;
    // Most values have no escape: one range up to the closing quote.
    const quote = indexIn(bytes, QUOTE, i, end);
    const backslash = quote < 0 ? indexIn(bytes, BACKSLASH, i, end) : indexIn(bytes, BACKSLASH, i, quote);
    if (quote >= 0 && backslash < 0) {
      labels[name] = own(bytes, i, quote);
      i = quote + 1;
      continue;
    }
    const value: number[] = [];
    for (;;) {
      if (i >= end) throw new ExpositionError(line, `unterminated value of label ${name}`);
      const c = bytes[i] as number;
      if (c === QUOTE) break;
      if (c === BACKSLASH) {
        if (i + 1 < end) value.push(bytes[i + 1] === 110 ? NEWLINE : (bytes[i + 1] as number)); // \n
        i += 2;
        continue;
      }
      value.push(c);
      i++;
    }
    const unescaped = Buffer.from(value);
    labels[name] = own(unescaped, 0, unescaped.length);
    i++;
  }
}

/** The index of the first blank (or `end`) from `i`. */
function nonBlank(bytes: Bytes, i: number, end: number): number {
  while (i < end && !isWhite(bytes[i] as number)) i++;
  return i;
}
/** The index of the first non-blank (or `end`) from `i`. */
function skipBlank(bytes: Bytes, i: number, end: number): number {
  while (i < end && isWhite(bytes[i] as number)) i++;
  return i;
}

function startsWithAt(bytes: Bytes, prefix: Bytes, at: number, end: number): boolean {
  if (end - at < prefix.length) return false;
  for (let k = 0; k < prefix.length; k++) if (bytes[at + k] !== prefix[k]) return false;
  return true;
}

/** A family's shared name when `accepts` keeps one of its series (itself, _total or _count). */
function familyOf(family: string, accepts: ((name: string) => boolean) | undefined): string | undefined {
  if (accepts && !accepts(family) && !accepts(`${family}_total`) && !accepts(`${family}_count`))
    return undefined;
  return internString(family);
}

/**
 * Parses a text exposition, given as its UTF-8 bytes (a scrape's body) or as a string. With `keep`,
 * only the samples whose series name it accepts are parsed and returned (and the TYPE lines of
 * their families), and their strings are shared copies, so they can be kept between windows
 * without the body. `keep` as a SeriesFilter (the scrape path) checks each line's name on the bytes
 * themselves: the lines of other series cost no allocation; as a function it is handed each name.
 */
export function parseExposition(
  input: string | Uint8Array,
  keep?: SeriesFilter | ((name: string) => boolean),
): Exposition {
  const bytes =
    typeof input === "string"
      ? encode(input)
      : Buffer.isBuffer(input)
        ? input
        : Buffer.from(input.buffer, input.byteOffset, input.byteLength);
  const samples: Sample[] = [];
  const types = new Map<string, string>();
  const own: Own = keep ? internRange : decode;
  const filter = typeof keep === "object" ? keep : undefined;
  const accepts = typeof keep === "function" ? keep : undefined;
  const length = bytes.length;
  let n = 0;
  // A byte order mark at the start is not part of the first line.
  let pos = bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf ? 3 : 0;
  while (pos <= length) {
    n++;
    const newline = bytes.indexOf(NEWLINE, pos);
    const eol = newline < 0 ? length : newline;
    const next = eol + 1;
    let end = eol;
    if (end > pos && bytes[end - 1] === CR) end--;
    let i = pos;
    while (i < end && isWhite(bytes[i] as number)) i++;
    pos = next;
    if (i >= end) continue;
    const lineStart = i;
    if (bytes[i] === HASH) {
      // `# TYPE <family> <type>` lines only; HELP and other comments are skipped.
      const typeWord = skipBlank(bytes, i + 1, end);
      if (typeWord === i + 1 || !startsWithAt(bytes, TYPE, typeWord, end)) continue;
      const familyStart = skipBlank(bytes, typeWord + 4, end);
      const familyEnd = nonBlank(bytes, familyStart, end);
      const typeStart = skipBlank(bytes, familyEnd, end);
      const typeEnd = nonBlank(bytes, typeStart, end);
      if (
        familyStart === typeWord + 4 ||
        familyEnd === familyStart ||
        typeStart === familyEnd ||
        typeEnd === typeStart
      )
        continue;
      if (!keep) types.set(decode(bytes, familyStart, familyEnd), decode(bytes, typeStart, typeEnd));
      else {
        const family = filter
          ? filter.families.find(bytes, familyStart, familyEnd)
          : familyOf(decode(bytes, familyStart, familyEnd), accepts);
        if (family !== undefined) types.set(family, internRange(bytes, typeStart, typeEnd));
      }
      continue;
    }
    if (!isNameStart(bytes[i] as number))
      throw new ExpositionError(n, "a sample must start with a metric name");
    i++;
    while (i < end && isNameChar(bytes[i] as number)) i++;
    let name: string | undefined;
    if (filter) {
      name = filter.series.find(bytes, lineStart, i);
      if (name === undefined) continue;
    } else {
      name = decode(bytes, lineStart, i);
      if (accepts && !accepts(name)) continue;
      if (keep) name = internRange(bytes, lineStart, i);
    }
    let labels: Record<string, string> = keep ? NO_LABELS : {};
    if (i < end && bytes[i] === OPEN_BRACE) {
      if (keep) {
        // The block ends at the first `}` after the last quote (a value holds no quote).
        const lastQuote = bytes.lastIndexOf(QUOTE, end - 1);
        const close = indexIn(bytes, CLOSE_BRACE, Math.max(lastQuote, i), end);
        const open = i + 1;
        const shared = close >= 0 ? labelSets.find(bytes, open, close) : undefined;
        if (shared !== undefined) {
          labels = shared;
          i = close + 1;
        } else {
          labels = {};
          i = parseLabels(bytes, open, end, lineStart, n, own, labels);
          if (i === close + 1 && labelSets.size < LABEL_SETS_LIMIT)
            labelSets.add(bytes, open, close, Object.freeze(labels));
        }
      } else i = parseLabels(bytes, i + 1, end, lineStart, n, own, labels);
    }
    while (i < end && isBlank(bytes[i] as number)) i++;
    const valueStart = i;
    while (i < end && !isBlank(bytes[i] as number)) i++;
    const valueEnd = i;
    while (i < end && isBlank(bytes[i] as number)) i++;
    while (i < end && !isBlank(bytes[i] as number)) i++; // the optional timestamp
    while (i < end && isBlank(bytes[i] as number)) i++;
    if (valueStart === valueEnd || i < end)
      throw new ExpositionError(n, `expected a value (and optional timestamp) after ${name}`);
    const plain = plainDecimal(bytes, valueStart, valueEnd);
    const value = Number.isNaN(plain) ? parseNumber(decode(bytes, valueStart, valueEnd), n) : plain;
    samples.push({ name, labels, value });
  }
  return { samples, types };
}
