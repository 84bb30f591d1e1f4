import { describe, expect, it } from "vitest";
import { ManualClock } from "./clock.ts";
import { EventRecorder, eventKey } from "./events.ts";
import { apiError, FakeClient } from "./fakeclient.ts";
import { Events } from "./rest.ts";
import { microTime } from "./time.ts";

const dt = {
  apiVersion: "specops.dev/v1alpha1",
  kind: "DraftTraining",
  metadata: { name: "train", namespace: "ns", uid: "uid-1", resourceVersion: "7" },
};

function recorder(client = new FakeClient(), clock = new ManualClock(Date.parse("2026-01-01T00:00:00Z"))) {
  const r = new EventRecorder({
    client,
    clock,
    reportingController: "specops.dev/drafttraining",
    reportingInstance: "pod-1",
  });
  return { client, clock, r };
}

describe("eventKey", () => {
  it("is equal for identical occurrences and differs in any field", () => {
    const k = eventKey(dt, "Normal", "Started", "Start", "stage prepare");
    expect(eventKey(structuredClone(dt), "Normal", "Started", "Start", "stage prepare")).toBe(k);
    expect(eventKey(dt, "Warning", "Started", "Start", "stage prepare")).not.toBe(k);
    expect(eventKey(dt, "Normal", "Started", "Start", "stage train")).not.toBe(k);
    expect(
      eventKey(
        { ...dt, metadata: { ...dt.metadata, uid: "uid-2" } },
        "Normal",
        "Started",
        "Start",
        "stage prepare",
      ),
    ).not.toBe(k);
  });
});

describe("EventRecorder", () => {
  it("creates an events.k8s.io/v1 Event regarding the object", async () => {
    const { client, r } = recorder();
    r.event(dt, "Normal", "StageStarted", "stage prepare started");
    await r.flush();
    const [ev] = client.objects(Events) as Record<string, unknown>[];
    expect(ev).toMatchObject({
      metadata: { namespace: "ns" },
      type: "Normal",
      reason: "StageStarted",
      action: "StageStarted",
      note: "stage prepare started",
      reportingController: "specops.dev/drafttraining",
      reportingInstance: "pod-1",
      eventTime: "2026-01-01T00:00:00.000000Z",
      regarding: { kind: "DraftTraining", name: "train", uid: "uid-1" },
    });
  });

  it("folds repeats into one Event with a growing series", async () => {
    const { client, clock, r } = recorder();
    r.event(dt, "Warning", "PodFailed", "exit 137");
    await r.flush();
    clock.advance(1000);
    r.event(dt, "Warning", "PodFailed", "exit 137");
    r.event(dt, "Warning", "PodFailed", "exit 137");
    await r.flush();
    const events = client.objects(Events) as { series?: { count: number; lastObservedTime: string } }[];
    expect(events).toHaveLength(1);
    expect(events[0]?.series).toEqual({ count: 3, lastObservedTime: microTime(clock.now()) });
    expect(client.actions.filter((a) => a.verb === "create")).toHaveLength(1);
    r.event(dt, "Warning", "PodFailed", "exit 1"); // a different note is a different event
    await r.flush();
    expect(client.objects(Events)).toHaveLength(2);
  });

  it("starts a new Event after the dedupe window", async () => {
    const { client, clock, r } = recorder();
    r.event(dt, "Normal", "Synced", "ok");
    await r.flush();
    clock.advance(11 * 60_000);
    r.event(dt, "Normal", "Synced", "ok");
    await r.flush();
    expect(client.objects(Events)).toHaveLength(2);
  });

  it("never throws or blocks when the API refuses, and redacts the note", async () => {
    const { client, r } = recorder();
    client.failNext("create", apiError(403, "Forbidden", "no"));
    expect(() => r.event(dt, "Warning", "Failed", "boom")).not.toThrow();
    await r.flush();
    expect(client.objects(Events)).toHaveLength(0);
    r.event(dt, "Warning", "Failed", "token hf_abcdefghijklmnopqrstuvwxyz leaked");
    await r.flush();
    const [ev] = client.objects(Events) as { note: string }[];
    expect(ev?.note).not.toContain("hf_abcdefghijklmnop");
  });
});
