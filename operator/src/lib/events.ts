// Kubernetes Events (events.k8s.io/v1) on the objects a controller manages. event() never blocks
// and never throws: sends happen in the background and failures are logged at debug. Identical
// events (same object, type, reason, action, note) within the dedupe window become one Event whose
// series.count grows, instead of a flood of new objects.
import { randomBytes } from "node:crypto";
import type { Logger } from "pino";
import type { Client } from "./client.ts";
import { type Clock, realClock } from "./clock.ts";
import { isNotFound } from "./errors.ts";
import { silentLogger } from "./log.ts";
import { redactString } from "./redact.ts";
import { Events, type KubeObject } from "./rest.ts";
import { microTime } from "./time.ts";

export type EventType = "Normal" | "Warning";

export interface EventRecorderOptions {
  client: Client;
  /** e.g. "specops.dev/drafttraining-controller". */
  reportingController: string;
  /** e.g. the pod name. */
  reportingInstance: string;
  clock?: Clock;
  logger?: Logger;
  /** Repeats within this window increment the series; default 10 minutes. */
  dedupeWindowMs?: number;
}

/** The dedupe key: two events with the same key are the same occurrence repeated. */
export function eventKey(
  regarding: KubeObject,
  type: EventType,
  reason: string,
  action: string,
  note: string,
) {
  return [
    regarding.metadata?.uid ?? `${regarding.metadata?.namespace}/${regarding.metadata?.name}`,
    type,
    reason,
    action,
    note,
  ].join("\u0000");
}

interface Series {
  name: string;
  namespace: string;
  firstSeen: number;
  count: number;
  sentCount: number;
  lastObserved: number;
  sending?: Promise<void>;
}

const MAX_NOTE = 1024;
const MAX_SERIES = 4096;

export class EventRecorder {
  readonly #opts: EventRecorderOptions;
  readonly #clock: Clock;
  readonly #log: Logger;
  readonly #series = new Map<string, Series>();
  readonly #inFlight = new Set<Promise<void>>();

  constructor(opts: EventRecorderOptions) {
    this.#opts = opts;
    this.#clock = opts.clock ?? realClock;
    this.#log = (opts.logger ?? silentLogger).child({ component: "events" });
  }

  /** Records an event on regarding. Fire-and-forget. */
  event(regarding: KubeObject, type: EventType, reason: string, note: string, action = reason): void {
    const namespace = regarding.metadata?.namespace ?? "default";
    const safeNote = redactString(note).slice(0, MAX_NOTE);
    const key = eventKey(regarding, type, reason, action, safeNote);
    const now = this.#clock.now();
    let s = this.#series.get(key);
    if (s && now - s.firstSeen > (this.#opts.dedupeWindowMs ?? 600_000)) {
      this.#series.delete(key);
      s = undefined;
    }
    if (s) {
      s.count++;
      s.lastObserved = now;
    } else {
      if (this.#series.size >= MAX_SERIES) this.#series.delete(this.#series.keys().next().value as string);
      const name = `${regarding.metadata?.name ?? "object"}.${now.toString(16)}${randomBytes(2).toString("hex")}`;
      s = { name, namespace, firstSeen: now, count: 1, sentCount: 0, lastObserved: now };
      this.#series.set(key, s);
    }
    // One send per series at a time; repeats that arrive meanwhile are folded into the next patch.
    if (!s.sending) this.#track(this.#send(s, regarding, type, reason, action, safeNote));
  }

  /** Waits for every pending send (tests, shutdown). */
  async flush(): Promise<void> {
    while (this.#inFlight.size > 0) await Promise.allSettled([...this.#inFlight]);
  }

  #track(p: Promise<void>): void {
    this.#inFlight.add(p);
    p.finally(() => this.#inFlight.delete(p));
  }

  #send(s: Series, regarding: KubeObject, type: EventType, reason: string, action: string, note: string) {
    const run = async () => {
      try {
        while (s.sentCount < s.count) {
          const count = s.count;
          if (s.sentCount === 0) await this.#create(s, regarding, type, reason, action, note, count);
          else
            await this.#patchSeries(s, count).catch(async (err) => {
              if (!isNotFound(err)) throw err;
              await this.#create(s, regarding, type, reason, action, note, count);
            });
          s.sentCount = count;
        }
      } catch (err) {
        this.#log.debug({ err, reason }, "event not recorded"); // best effort; a later repeat retries
      } finally {
        // Cleared in the same tick as the loop's last check, so a repeat can't fall in between.
        s.sending = undefined;
      }
    };
    s.sending = run();
    return s.sending;
  }

  async #create(
    s: Series,
    regarding: KubeObject,
    type: EventType,
    reason: string,
    action: string,
    note: string,
    count: number,
  ): Promise<void> {
    const m = regarding.metadata ?? {};
    await this.#opts.client.create(Events, {
      apiVersion: Events.apiVersion,
      kind: Events.kind,
      metadata: { name: s.name, namespace: s.namespace },
      eventTime: microTime(s.firstSeen),
      reportingController: this.#opts.reportingController,
      reportingInstance: this.#opts.reportingInstance,
      action,
      reason,
      note,
      type,
      regarding: {
        apiVersion: regarding.apiVersion,
        kind: regarding.kind,
        name: m.name,
        namespace: m.namespace,
        uid: m.uid,
        resourceVersion: m.resourceVersion,
      },
      ...(count > 1 ? { series: { count, lastObservedTime: microTime(s.lastObserved) } } : {}),
    } as KubeObject);
  }

  async #patchSeries(s: Series, count: number): Promise<void> {
    await this.#opts.client.patch(
      Events,
      s.namespace,
      s.name,
      { series: { count, lastObservedTime: microTime(s.lastObserved) } },
      { type: "merge" },
    );
  }
}
