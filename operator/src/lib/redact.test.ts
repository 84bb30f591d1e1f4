import { Writable } from "node:stream";
import { ApiException } from "@kubernetes/client-node";
import { describe, expect, it } from "vitest";
import { createLogger } from "./log.ts";
import { REDACTED, redact, redactString } from "./redact.ts";

const HF = "hf_AbCdEfGhIjKlMnOpQrStUvWxYz012345";
const AKID = "AKIAIOSFODNN7EXAMPLE";
const AWS_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";

describe("redactString", () => {
  it.each([
    [`download failed with token ${HF}`, HF],
    [`key id ${AKID}`, AKID],
    [`aws_secret_access_key=${AWS_SECRET}`, AWS_SECRET],
    ["Authorization: Bearer eyJhbGciOiJSUzI1NiJ9.payload.sig", "eyJhbGciOiJSUzI1NiJ9"],
    ["HF_TOKEN=abc123secretvalue ok", "abc123secretvalue"],
    ['{"password": "hunter2hunter2"}', "hunter2hunter2"],
    ["--api-key sk-live-123456789", undefined],
  ])("%s", (input, secret) => {
    const out = redactString(input);
    if (secret) expect(out).not.toContain(secret);
    expect(out.length).toBeGreaterThan(0);
  });

  it("leaves ordinary text alone", () => {
    const s = "reconciled default/train-1 in 12ms (generation 3, key ns/name)";
    expect(redactString(s)).toBe(s);
  });
});

describe("redact", () => {
  it("masks Secret data, sensitive env values and sensitive keys, keeping structure", () => {
    const input = {
      secret: {
        apiVersion: "v1",
        kind: "Secret",
        metadata: { name: "hf" },
        data: { token: "aGZfeHh4" },
        stringData: { t: "x" },
      },
      env: [
        { name: "HF_TOKEN", value: HF },
        { name: "AWS_SECRET_ACCESS_KEY", value: AWS_SECRET },
        { name: "DB_PASSWORD", value: "pw" },
        { name: "MODEL", value: "Qwen/Qwen3-8B" },
        { name: "HF_TOKEN", valueFrom: { secretKeyRef: { name: "hf", key: "token" } } },
      ],
      apiKey: "sk-123",
      key: "ns/name",
      note: `used ${HF}`,
    };
    const out = redact(input) as typeof input;
    expect(out.secret.data).toEqual({ token: REDACTED });
    expect(out.secret.stringData).toEqual({ t: REDACTED });
    expect(out.secret.metadata.name).toBe("hf");
    expect(out.env.map((e) => ("value" in e ? e.value : "ref"))).toEqual([
      REDACTED,
      REDACTED,
      REDACTED,
      "Qwen/Qwen3-8B",
      "ref",
    ]);
    expect(out.env[4]).toEqual(input.env[4]);
    expect(out.apiKey).toBe(REDACTED);
    expect(out.key).toBe("ns/name");
    expect(JSON.stringify(out)).not.toContain(HF);
    expect(input.env[0]?.value).toBe(HF); // input untouched
  });
});

describe("createLogger", () => {
  it("writes JSON lines with no secret in message, fields or errors", () => {
    const lines: string[] = [];
    const destination = new Writable({
      write(chunk, _enc, cb) {
        lines.push(String(chunk));
        cb();
      },
    });
    const log = createLogger({ level: "info", destination }).child({ controller: "drafttraining" });
    log.info(
      { env: [{ name: "HF_TOKEN", value: HF }], key: "ns/a", reconcileID: "r1" },
      `starting with ${HF}`,
    );
    log.error({ err: new ApiException(500, `upstream said ${AKID}`, {}, {}) }, "failed");
    log.warn({ err: new Error("boom", { cause: new Error(`nested ${HF}`) }) }, "wrapped");
    expect(lines).toHaveLength(3);
    for (const line of lines) {
      expect(line).not.toContain(HF);
      expect(line).not.toContain(AKID);
    }
    const first = JSON.parse(lines[0] as string);
    expect(first).toMatchObject({
      level: "info",
      controller: "drafttraining",
      key: "ns/a",
      reconcileID: "r1",
    });
    const second = JSON.parse(lines[1] as string);
    expect(second.err).toMatchObject({ type: "ApiException", code: 500 });
    expect(second.err.message).toContain("upstream said");
  });
});
