// Prometheus text exposition format (version 0.0.4, as prometheus_client writes it for vLLM and
// SGLang). Measured against parse-prometheus-text-format 1.1.1, the npm parser of that name: it
// dropped the labels and _sum/_count of a histogram whose `le` label sits between other labels
// (vLLM's order), so a small parser lives here instead. Pure; throws ExpositionError naming the line.

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

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*/;
/** Sticky (matched at lastIndex): no slice of the line per label. */
const LABEL_NAME = /[a-zA-Z_][a-zA-Z0-9_]*/y;

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

/**
 * One shared copy of a name or label value. A substring of the scraped text would otherwise keep
 * the whole text alive (V8 slices long substrings) for as long as the sample is kept.
 */
const interned = new Map<string, string>();
const INTERN_LIMIT = 50_000;
function intern(s: string): string {
  const hit = interned.get(s);
  if (hit !== undefined) return hit;
  const copy = JSON.parse(JSON.stringify(s)) as string;
  if (interned.size < INTERN_LIMIT) interned.set(copy, copy);
  return copy;
}
const asIs = (s: string) => s;

function parseLabels(
  text: string,
  start: number,
  line: number,
  own: (s: string) => string,
): { labels: Record<string, string>; end: number } {
  const labels: Record<string, string> = {};
  let i = start;
  for (;;) {
    while (text[i] === " " || text[i] === ",") i++;
    if (text[i] === "}") return { labels, end: i + 1 };
    LABEL_NAME.lastIndex = i;
    const name = LABEL_NAME.exec(text)?.[0];
    if (!name) throw new ExpositionError(line, `bad label name at column ${i + 1}`);
    i += name.length;
    while (text[i] === " ") i++;
    if (text[i] !== "=" || text[i + 1] !== '"')
      throw new ExpositionError(line, `label ${name} needs ="value"`);
    i += 2;
    // Most values have no escape: one slice up to the closing quote.
    const quote = text.indexOf('"', i);
    const backslash = text.indexOf("\\", i);
    if (quote >= 0 && (backslash < 0 || backslash > quote)) {
      labels[own(name)] = own(text.slice(i, quote));
      i = quote + 1;
      continue;
    }
    let value = "";
    for (;;) {
      const c = text[i];
      if (c === undefined) throw new ExpositionError(line, `unterminated value of label ${name}`);
      if (c === '"') break;
      if (c === "\\") {
        const next = text[i + 1];
        value += next === "n" ? "\n" : (next ?? "");
        i += 2;
        continue;
      }
      value += c;
      i++;
    }
    labels[own(name)] = own(value);
    i++;
  }
}

/**
 * Parses a text exposition. With `keep`, only the samples whose series name it accepts are parsed
 * and returned (and the TYPE lines of their families): the lines of other series are checked for a
 * name only, which spares most of the work and memory on an engine's full /metrics; the samples
 * then hold no part of the text, so they can be kept between windows without it.
 */
export function parseExposition(text: string, keep?: (name: string) => boolean): Exposition {
  const samples: Sample[] = [];
  const types = new Map<string, string>();
  const own = keep ? intern : asIs;
  const lines = text.split("\n");
  for (let n = 0; n < lines.length; n++) {
    const raw = lines[n] ?? "";
    const lineText = raw.endsWith("\r") ? raw.slice(0, -1) : raw;
    const line = lineText.trimStart();
    if (line === "") continue;
    if (line.startsWith("#")) {
      const m = /^#\s+TYPE\s+(\S+)\s+(\S+)/.exec(line);
      if (m?.[1] && m[2] && (!keep || keep(m[1]) || keep(`${m[1]}_total`) || keep(`${m[1]}_count`)))
        types.set(own(m[1]), own(m[2]));
      continue;
    }
    const name = NAME.exec(line)?.[0];
    if (!name) throw new ExpositionError(n + 1, "a sample must start with a metric name");
    if (keep && !keep(name)) continue;
    let i = name.length;
    let labels: Record<string, string> = {};
    if (line[i] === "{") {
      const parsed = parseLabels(line, i + 1, n + 1, own);
      labels = parsed.labels;
      i = parsed.end;
    }
    const fields = line.slice(i).trim().split(/\s+/);
    if (fields.length < 1 || fields.length > 2 || fields[0] === "") {
      throw new ExpositionError(n + 1, `expected a value (and optional timestamp) after ${name}`);
    }
    samples.push({ name: own(name), labels, value: parseNumber(fields[0] ?? "", n + 1) });
  }
  return { samples, types };
}
