// parseExposition's `keep` filter against the engines' real-format fixtures: the samples kept are
// exactly the ones the signal parser reads, and the signals derived from them equal those from the
// full parse (vLLM with data-parallel engines, both SGLang prefixes).
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { readsSeries } from "./engines.ts";
import { parseExposition } from "./exposition.ts";
import { deriveSignals } from "./signals.ts";

const fixture = (name: string) =>
  readFileSync(new URL(`../../../test/fixtures/metrics/${name}`, import.meta.url), "utf8");

describe("parseExposition with keep (what a scrape kept between windows holds)", () => {
  for (const engine of ["vllm-dp2", "sglang-a", "sglang-b"]) {
    it(`${engine}: keeps only the series the signal parser reads, and derives the same signals`, () => {
      const [t0, t1] = [fixture(`${engine}-t0.prom`), fixture(`${engine}-t1.prom`)];
      const full = [parseExposition(t0), parseExposition(t1)];
      const kept = [parseExposition(t0, readsSeries), parseExposition(t1, readsSeries)];
      expect(kept[1]?.samples).toEqual(full[1]?.samples.filter((s) => readsSeries(s.name)));
      expect(kept[1]?.samples.length).toBeGreaterThan(0);
      const signals = (e: typeof full) =>
        deriveSignals([{ pod: "p", exposition: e[0] }], [{ pod: "p", exposition: e[1] }], 60);
      expect(signals(kept)).toEqual(signals(full));
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
