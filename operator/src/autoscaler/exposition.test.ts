// parseExposition's `keep` filter against the engines' real-format fixtures: the samples kept are
// exactly the ones the signal parser reads, and the signals derived from them equal those from the
// full parse (vLLM with data-parallel engines, both SGLang prefixes).
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { readSeriesFilter, readsSeries } from "./engines.ts";
import { parseExposition, seriesFilter } from "./exposition.ts";
import { deriveSignals } from "./signals.ts";

const fixture = (name: string) =>
  readFileSync(new URL(`../../../test/fixtures/metrics/${name}`, import.meta.url), "utf8");

describe("parseExposition with keep (what a scrape kept between windows holds)", () => {
  for (const engine of ["vllm-dp2", "vllm-steps", "sglang-a", "sglang-b", "sglang-steps"]) {
    it(`${engine}: keeps only the series the signal parser reads, and derives the same signals`, () => {
      const [t0, t1] = [fixture(`${engine}-t0.prom`), fixture(`${engine}-t1.prom`)];
      const full = [parseExposition(t0), parseExposition(t1)];
      const kept = [parseExposition(t0, readsSeries), parseExposition(t1, readsSeries)];
      expect(kept[1]?.samples).toEqual(full[1]?.samples.filter((s) => readsSeries(s.name)));
      expect(kept[1]?.samples.length).toBeGreaterThan(0);
      const signals = (e: typeof full) =>
        deriveSignals([{ pod: "p", exposition: e[0] }], [{ pod: "p", exposition: e[1] }], 60);
      expect(signals(kept)).toEqual(signals(full));
      // The step figures of the online SPS(B) estimate survive the filter.
      if (engine === "vllm-steps") expect(signals(kept).steps).toHaveLength(2);
      if (engine === "sglang-steps")
        expect(signals(kept).tokenIntervals?.[0]).toMatchObject({ acceptLength: 3, verifyTokens: 4 });
    });
  }

  it("a second derivation over the same parsed scrapes is the first one's (the two readers of a window)", () => {
    const [t0, t1] = [fixture("vllm-dp2-t0.prom"), fixture("vllm-dp2-t1.prom")];
    const start = [{ pod: "p", exposition: parseExposition(t0, readsSeries), time: 0 }];
    const end = [{ pod: "p", exposition: parseExposition(t1, readsSeries), time: 60 }];
    const first = deriveSignals(start, end, 60);
    expect(deriveSignals([...start], [...end], 60)).toBe(first);
    // Another window length, or other scrapes, derive afresh.
    expect(deriveSignals(start, end, 30)).not.toBe(first);
    expect(deriveSignals(start, end, 30).tau).toBe(first.tau);
    const other = [{ pod: "p", exposition: parseExposition(t1, readsSeries), time: 60 }];
    expect(deriveSignals(start, other, 60)).not.toBe(first);
    expect(deriveSignals(start, other, 60)).toEqual(first);
  });

  it("skips other series unparsed but still reads escaped label values of kept ones", () => {
    const text = [
      "# TYPE other_metric gauge",
      'other_metric{a="not \\"parsed\\"",broken 1',
      "# TYPE vllm:num_requests_running gauge",
      'vllm:num_requests_running{model_name="a\\"b\\\\c\\nd",engine="0"} 3',
      "",
    ].join("\n");
    const e = parseExposition(text, readsSeries);
    expect(e.samples).toEqual([
      { name: "vllm:num_requests_running", labels: { model_name: 'a"b\\c\nd', engine: "0" }, value: 3 },
    ]);
    expect([...e.types.keys()]).toEqual(["vllm:num_requests_running"]);
    expect(() => parseExposition(text)).toThrow(/line 2/);
  });
});

describe("parseExposition with a SeriesFilter (the scrape path: names matched on the text)", () => {
  for (const engine of ["vllm-dp2", "vllm-steps", "sglang-a", "sglang-b", "sglang-steps"]) {
    it(`${engine}: keeps the very samples and TYPE lines the name function keeps`, () => {
      for (const t of [fixture(`${engine}-t0.prom`), fixture(`${engine}-t1.prom`)]) {
        const byFunction = parseExposition(t, readsSeries);
        const byFilter = parseExposition(t, readSeriesFilter);
        expect(byFilter.samples).toEqual(byFunction.samples);
        expect(byFilter.types).toEqual(byFunction.types);
        expect(byFilter.samples.length).toBeGreaterThan(10);
      }
    });
  }

  it("finds a kept family after many skipped lines, and no series that only shares its prefix", () => {
    const skipped = Array.from({ length: 2000 }, (_, i) => `vllm:other_${i}{engine="0"} ${i}`);
    const text = [
      "# HELP vllm:num_requests_running Number of requests running.",
      "# TYPE vllm:num_requests_running gauge",
      ...skipped,
      'vllm:num_requests_runningx{engine="0"} 9',
      'vllm:num_requests_runnin{engine="0"} 8',
      'vllm:num_requests_running{engine="0"} 4',
      '  vllm:num_requests_running{engine="1"} 5 1764580000000\r',
      "vllm:num_requests_running 6",
    ].join("\n");
    const e = parseExposition(text, seriesFilter(["vllm:num_requests_running"]));
    expect(e.samples).toEqual([
      { name: "vllm:num_requests_running", labels: { engine: "0" }, value: 4 },
      { name: "vllm:num_requests_running", labels: { engine: "1" }, value: 5 },
      { name: "vllm:num_requests_running", labels: {}, value: 6 },
    ]);
    expect(e.types).toEqual(new Map([["vllm:num_requests_running", "gauge"]]));
  });

  it("reads escaped label values, keeps TYPE of a counter by its _total, and names the bad line", () => {
    const keep = seriesFilter(["c_total", "g"]);
    const text = [
      "# TYPE c counter",
      "# TYPE skipped counter",
      'skipped{a="\\"} 1',
      'c_total{path="a\\\\b",msg="say \\"hi\\"\\nbye",x="} ,"} 2.5e3',
      "g{} +Inf",
      "",
    ].join("\n");
    const e = parseExposition(text, keep);
    expect(e.samples).toEqual([
      { name: "c_total", labels: { path: "a\\b", msg: 'say "hi"\nbye', x: "} ," }, value: 2500 },
      { name: "g", labels: {}, value: Number.POSITIVE_INFINITY },
    ]);
    expect(e.types).toEqual(new Map([["c", "counter"]]));
    expect(() => parseExposition("g 1\ng{a=1} 2", keep)).toThrow(/line 2: label a needs/);
    expect(() => parseExposition("g 1\n\ng 1 2 3", keep)).toThrow(/line 3: expected a value/);
    expect(() => parseExposition('g{a="x} 1', keep)).toThrow(/line 1: unterminated value of label a/);
    expect(() => parseExposition("g one", keep)).toThrow(/line 1: bad value "one"/);
    expect(() => parseExposition('{a="1"} 1', keep)).toThrow(
      /line 1: a sample must start with a metric name/,
    );
  });

  it("a reset between two filtered scrapes counts from the restart (signals as from the full parse)", () => {
    const t0 = fixture("vllm-dp2-t0.prom");
    // The t1 scrape of an engine that restarted: every counter back near zero, _created moved on.
    const t1 = t0
      .split("\n")
      .map((line) =>
        /^vllm:\S+_total\{/.test(line)
          ? line.replace(/ \S+$/, " 3")
          : /^vllm:\S+_created\{/.test(line)
            ? line.replace(/ \S+$/, " 1764590000")
            : line,
      )
      .join("\n");
    const signals = (keep?: typeof readSeriesFilter) =>
      deriveSignals(
        [{ pod: "p", exposition: parseExposition(t0, keep) }],
        [{ pod: "p", exposition: parseExposition(t1, keep) }],
        60,
      );
    const filtered = signals(readSeriesFilter);
    expect(filtered.pods.resetSeries).toBeGreaterThan(0);
    expect(filtered.generationTokensPerSecond).toBeGreaterThan(0);
    expect(filtered).toEqual(signals());
  });

  it("reads every value as Number() does (plain decimals in place, the rest by Number)", () => {
    const values = [
      "0",
      "-0",
      "+5",
      "007",
      "1.",
      ".5",
      "0.1",
      "123.45600000000002",
      "1.7645800001234567e+09",
    ];
    for (let i = 0; i < 2000; i++) {
      const digits = String(Math.floor(Math.random() * 10 ** (1 + (i % 15))));
      const point = i % 3 === 0 ? digits.length : Math.floor(Math.random() * digits.length);
      values.push(`${i % 2 ? "-" : ""}${digits.slice(0, point)}.${digits.slice(point)}`);
    }
    const keep = seriesFilter(["g"]);
    const e = parseExposition(values.map((v) => `g ${v}`).join("\n"), keep);
    expect(e.samples.map((x) => x.value)).toEqual(values.map(Number));
    expect(Object.is(e.samples[1]?.value, -0)).toBe(true);
  });

  it("parses a body as bytes as it parses its text: UTF-8 label values, escapes, a BOM, CRLF", () => {
    const text = [
      "# TYPE vllm:num_requests_running gauge",
      'vllm:num_requests_running{model_name="Qwen/Qwen3-8B-模型",engine="0"} 3',
      'vllm:num_requests_running{model_name="ü \\"quoted\\" é",engine="1"} 4',
      "",
    ].join("\r\n");
    const body = Buffer.from(`\ufeff${text}`, "utf8");
    const expected = [
      {
        name: "vllm:num_requests_running",
        labels: { model_name: "Qwen/Qwen3-8B-模型", engine: "0" },
        value: 3,
      },
      { name: "vllm:num_requests_running", labels: { model_name: 'ü "quoted" é', engine: "1" }, value: 4 },
    ];
    for (const keep of [undefined, readSeriesFilter, readsSeries]) {
      expect(parseExposition(body, keep).samples).toEqual(expected);
      expect(parseExposition(text, keep).samples).toEqual(expected);
      // A plain Uint8Array view (not a Buffer) reads the same.
      expect(parseExposition(new Uint8Array(body), keep).samples).toEqual(expected);
    }
    // A fixture's bytes and its text give the same exposition.
    const fixtureText = fixture("vllm-dp2-t0.prom");
    expect(parseExposition(Buffer.from(fixtureText), readSeriesFilter)).toEqual(
      parseExposition(fixtureText, readSeriesFilter),
    );
    // Errors name the line whichever form the body came in.
    expect(() => parseExposition(Buffer.from("ok 1\nbad{a=1} 2"))).toThrow(/line 2/);
  });
});
