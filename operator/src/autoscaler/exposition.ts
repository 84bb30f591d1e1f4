// Prometheus text exposition format (version 0.0.4, as prometheus_client writes it for vLLM and
// SGLang). Measured against parse-prometheus-text-format 1.1.1, the npm parser of that name: it
// dropped the labels and _sum/_count of a histogram whose `le` label sits between other labels
// (vLLM's order), so a small parser lives here instead. Pure; throws ExpositionError naming the line.
// It walks the text by index rather than splitting it: with a SeriesFilter, a line of a series not
// kept is recognised from its characters and skipped without allocating anything (the operator
// scrapes every serving pod each window, and most of an engine's /metrics is not read).

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

/** FNV-1a over a range of a text, kept to a small integer (a Map key V8 stores unboxed). */
function hashRange(text: string, start: number, end: number): number {
  let h = 0x811c9dc5 | 0;
  for (let i = start; i < end; i++) h = Math.imul(h ^ text.charCodeAt(i), 16777619);
  return h & 0x3fffffff;
}

/** Values found by a range of some text's characters (their key), without slicing the text. */
class RangeMap<V> {
  readonly #byHash = new Map<number, { key: string; value: V } | { key: string; value: V }[]>();
  size = 0;

  find(text: string, start: number, end: number): V | undefined {
    const hit = this.#byHash.get(hashRange(text, start, end));
    if (hit === undefined) return undefined;
    const length = end - start;
    if (!Array.isArray(hit))
      return hit.key.length === length && text.startsWith(hit.key, start) ? hit.value : undefined;
    for (const e of hit) if (e.key.length === length && text.startsWith(e.key, start)) return e.value;
    return undefined;
  }

  /** Adds `key` (a flat string of its own, not a slice of a text) unless it is there. */
  add(key: string, value: V) {
    if (this.find(key, 0, key.length) !== undefined) return;
    const hash = hashRange(key, 0, key.length);
    const hit = this.#byHash.get(hash);
    const entry = { key, value };
    this.#byHash.set(hash, hit === undefined ? entry : Array.isArray(hit) ? [...hit, entry] : [hit, entry]);
    this.size++;
  }
}

class RangeTable extends RangeMap<string> {
  addString(s: string) {
    this.add(s, s);
  }
}

/** The series a parse keeps, matched on the text's characters (see parseExposition). */
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
 * One shared, flat copy of a name or label value. A substring of the scraped text would otherwise
 * keep the whole text alive (V8 slices long substrings) for as long as the sample is kept; and a
 * value seen before (most are, scrape after scrape) is found without allocating at all.
 */
const interned = new RangeTable();
const INTERN_LIMIT = 50_000;
const flatCopy = (s: string) => JSON.parse(JSON.stringify(s)) as string;
function internRange(text: string, start: number, end: number): string {
  const hit = interned.find(text, start, end);
  if (hit !== undefined) return hit;
  const copy = flatCopy(text.slice(start, end));
  if (interned.size < INTERN_LIMIT) interned.addString(copy);
  return copy;
}
function internString(s: string): string {
  return internRange(s, 0, s.length);
}
/**
 * Labels by the exact text between their braces, shared (frozen) by every sample written so: a
 * pod's series repeat their label sets scrape after scrape (and across pods of one model).
 */
const labelSets = new RangeMap<Readonly<Record<string, string>>>();
const LABEL_SETS_LIMIT = 50_000;
const NO_LABELS: Readonly<Record<string, string>> = Object.freeze({});

const sliceRange = (text: string, start: number, end: number) => text.slice(start, end);

type Own = (text: string, start: number, end: number) => string;

const SPACE = 32;
const TAB = 9;
const isBlank = (c: number) => c === SPACE || c === TAB;
/** What String.prototype.trimStart drops, near enough: ASCII whitespace, NBSP and BOM. */
const isWhite = (c: number) => c === SPACE || (c >= TAB && c <= 13) || c === 0xa0 || c === 0xfeff;
const isNameStart = (c: number) => (c >= 97 && c <= 122) || (c >= 65 && c <= 90) || c === 95 || c === 58; // a-z A-Z _ :
const isNameChar = (c: number) => isNameStart(c) || (c >= 48 && c <= 57);
const isLabelNameChar = (c: number) => isNameChar(c) && c !== 58;

const POWERS_OF_TEN = Array.from({ length: 16 }, (_, k) => 10 ** k);

/**
 * A plain decimal (optional sign, digits, one optional point, at most 15 digits) read in place:
 * the integer of its digits is exact and so is 10^k for k < 16, so one division rounds correctly
 * (the same double Number() gives). Anything else is NaN here and left to parseNumber.
 */
function plainDecimal(text: string, start: number, end: number): number {
  let i = start;
  const negative = text.charCodeAt(i) === 45; // -
  if (negative || text.charCodeAt(i) === 43) i++; // +
  if (i === end || end - i > 16) return Number.NaN;
  let digits = 0;
  let mantissa = 0;
  let fraction = -1;
  for (; i < end; i++) {
    const c = text.charCodeAt(i);
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

/** Labels from just after `{` to `}` within [start, end); returns the index after `}`. */
function parseLabels(
  text: string,
  start: number,
  end: number,
  lineStart: number,
  line: number,
  own: Own,
  labels: Record<string, string>,
): number {
  let i = start;
  for (;;) {
    while (i < end && (text.charCodeAt(i) === SPACE || text.charCodeAt(i) === 44)) i++; // ,
    if (i < end && text.charCodeAt(i) === 125) return i + 1; // }
    const nameStart = i;
    if (i < end && isNameStart(text.charCodeAt(i)) && text.charCodeAt(i) !== 58)
      while (i < end && isLabelNameChar(text.charCodeAt(i))) i++;
    if (i === nameStart) throw new ExpositionError(line, `bad label name at column ${i - lineStart + 1}`);
    const name = own(text, nameStart, i);
    while (i < end && text.charCodeAt(i) === SPACE) i++;
    if (i + 1 >= end || text[i] !== "=" || text[i + 1] !== '"')
      throw new ExpositionError(line, `label ${name} needs ="value"`);
    i += 2;
    // Most values have no escape: one range up to the closing quote.
    const quote = text.indexOf('"', i);
    const backslash = text.indexOf("\\", i);
    if (quote >= 0 && quote < end && (backslash < 0 || backslash > quote)) {
      labels[name] = own(text, i, quote);
      i = quote + 1;
      continue;
    }
    let value = "";
    for (;;) {
      if (i >= end) throw new ExpositionError(line, `unterminated value of label ${name}`);
      const c = text[i];
      if (c === '"') break;
      if (c === "\\") {
        const next = i + 1 < end ? text[i + 1] : "";
        value += next === "n" ? "\n" : (next ?? "");
        i += 2;
        continue;
      }
      value += c;
      i++;
    }
    labels[name] = own(value, 0, value.length);
    i++;
  }
}

/** The index of the first blank (or `end`) from `i`. */
function nonBlank(text: string, i: number, end: number): number {
  while (i < end && !isWhite(text.charCodeAt(i))) i++;
  return i;
}
/** The index of the first non-blank (or `end`) from `i`. */
function skipBlank(text: string, i: number, end: number): number {
  while (i < end && isWhite(text.charCodeAt(i))) i++;
  return i;
}

/** A family's shared name when `accepts` keeps one of its series (itself, _total or _count). */
function familyOf(family: string, accepts: ((name: string) => boolean) | undefined): string | undefined {
  if (accepts && !accepts(family) && !accepts(`${family}_total`) && !accepts(`${family}_count`))
    return undefined;
  return internString(family);
}

/**
 * Parses a text exposition. With `keep`, only the samples whose series name it accepts are parsed
 * and returned (and the TYPE lines of their families), and their strings are shared copies holding
 * no part of the text, so they can be kept between windows without it. `keep` as a SeriesFilter
 * (the scrape path) checks each line's name on the text itself: the lines of other series cost no
 * allocation; as a function it is handed each name.
 */
export function parseExposition(text: string, keep?: SeriesFilter | ((name: string) => boolean)): Exposition {
  const samples: Sample[] = [];
  const types = new Map<string, string>();
  const own: Own = keep ? internRange : sliceRange;
  const filter = typeof keep === "object" ? keep : undefined;
  const accepts = typeof keep === "function" ? keep : undefined;
  let n = 0;
  let pos = 0;
  while (pos <= text.length) {
    n++;
    const newline = text.indexOf("\n", pos);
    const eol = newline < 0 ? text.length : newline;
    const next = eol + 1;
    let end = eol;
    if (end > pos && text.charCodeAt(end - 1) === 13) end--; // \r
    let i = pos;
    while (i < end && isWhite(text.charCodeAt(i))) i++;
    pos = next;
    if (i >= end) continue;
    const lineStart = i;
    if (text.charCodeAt(i) === 35) {
      // `# TYPE <family> <type>` lines only; HELP and other comments are skipped.
      const typeWord = skipBlank(text, i + 1, end);
      if (typeWord === i + 1 || !text.startsWith("TYPE", typeWord)) continue;
      const familyStart = skipBlank(text, typeWord + 4, end);
      const familyEnd = nonBlank(text, familyStart, end);
      const typeStart = skipBlank(text, familyEnd, end);
      const typeEnd = nonBlank(text, typeStart, end);
      if (
        familyStart === typeWord + 4 ||
        familyEnd === familyStart ||
        typeStart === familyEnd ||
        typeEnd === typeStart
      )
        continue;
      if (!keep) types.set(text.slice(familyStart, familyEnd), text.slice(typeStart, typeEnd));
      else {
        const family = filter
          ? filter.families.find(text, familyStart, familyEnd)
          : familyOf(text.slice(familyStart, familyEnd), accepts);
        if (family !== undefined) types.set(family, internRange(text, typeStart, typeEnd));
      }
      continue;
    }
    if (!isNameStart(text.charCodeAt(i)))
      throw new ExpositionError(n, "a sample must start with a metric name");
    i++;
    while (i < end && isNameChar(text.charCodeAt(i))) i++;
    let name: string | undefined;
    if (filter) {
      name = filter.series.find(text, lineStart, i);
      if (name === undefined) continue;
    } else {
      name = text.slice(lineStart, i);
      if (accepts && !accepts(name)) continue;
      if (keep) name = internString(name);
    }
    let labels: Record<string, string> = keep ? NO_LABELS : {};
    if (i < end && text.charCodeAt(i) === 123) {
      // {
      if (keep) {
        // The block ends at the first `}` after the last quote (a value holds no quote).
        const lastQuote = text.lastIndexOf('"', end - 1);
        const close = text.indexOf("}", Math.max(lastQuote, i));
        const open = i + 1;
        const shared = close >= 0 && close < end ? labelSets.find(text, open, close) : undefined;
        if (shared !== undefined) {
          labels = shared;
          i = close + 1;
        } else {
          labels = {};
          i = parseLabels(text, open, end, lineStart, n, own, labels);
          if (i === close + 1 && labelSets.size < LABEL_SETS_LIMIT)
            labelSets.add(flatCopy(text.slice(open, close)), Object.freeze(labels));
        }
      } else i = parseLabels(text, i + 1, end, lineStart, n, own, labels);
    }
    while (i < end && isBlank(text.charCodeAt(i))) i++;
    const valueStart = i;
    while (i < end && !isBlank(text.charCodeAt(i))) i++;
    const valueEnd = i;
    while (i < end && isBlank(text.charCodeAt(i))) i++;
    while (i < end && !isBlank(text.charCodeAt(i))) i++; // the optional timestamp
    while (i < end && isBlank(text.charCodeAt(i))) i++;
    if (valueStart === valueEnd || i < end)
      throw new ExpositionError(n, `expected a value (and optional timestamp) after ${name}`);
    const plain = plainDecimal(text, valueStart, valueEnd);
    const value = Number.isNaN(plain) ? parseNumber(text.slice(valueStart, valueEnd), n) : plain;
    samples.push({ name, labels, value });
  }
  return { samples, types };
}
