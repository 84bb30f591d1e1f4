// An in-memory Client for unit tests of reconcilers and library parts (inject it instead of
// mocking modules). It keeps objects per kind, bumps resourceVersion on every write, enforces
// resourceVersion preconditions on replace and JSON Patch `test`, streams watch events, records
// every call, and can be told to fail the next call of a verb or to hang a verb (a frozen API
// server: the call settles only when its signal aborts).
import type {
  Client,
  DeleteOptions,
  ListOptions,
  ListResult,
  PatchOptions,
  RequestOptions,
  WatchEventType,
  WatchHandle,
  WriteOptions,
} from "./client.ts";
import { ApiError } from "./errors.ts";
import type { KubeObject, Resource } from "./rest.ts";

export type Verb = "get" | "list" | "watch" | "create" | "replace" | "patch" | "delete";

interface Watcher {
  plural: string;
  namespace: string | undefined;
  onEvent: (type: WatchEventType, obj: KubeObject) => void;
  end: () => void;
}

export class FakeClient implements Client {
  /** Every call: verb, plural, namespace, name. */
  readonly actions: {
    verb: Verb;
    plural: string;
    namespace?: string;
    name?: string;
    subresource?: string;
  }[] = [];
  readonly #objects = new Map<string, KubeObject>();
  readonly #watchers = new Set<Watcher>();
  readonly #failures: { verb: Verb; err: Error }[] = [];
  readonly #hanging = new Set<Verb>();
  /** While set, watch events queue here instead of being delivered (a watch that lags the writes). */
  #held?: (() => void)[];
  #rv = 1;

  /** Makes the next call of verb throw err (e.g. new ApiError(409, ...)). */
  failNext(verb: Verb, err: Error): void {
    this.#failures.push({ verb, err });
  }

  /** Calls of these verbs (all, when none given) hang until their signal aborts; resume() ends it. */
  hang(...verbs: Verb[]): void {
    for (const v of verbs.length
      ? verbs
      : (["get", "list", "create", "replace", "patch", "delete"] as Verb[]))
      this.#hanging.add(v);
  }

  resume(): void {
    this.#hanging.clear();
  }

  /** Queues watch events from now on (writes return before their watch events arrive). */
  holdWatchEvents(): void {
    this.#held ??= [];
  }

  /** Delivers the queued watch events, in order, and delivers directly again. */
  releaseWatchEvents(): void {
    const held = this.#held ?? [];
    this.#held = undefined;
    for (const deliver of held) deliver();
  }

  /** Test setup: store obj as-is (with a fresh resourceVersion and uid), emitting ADDED. */
  seed<T extends KubeObject>(r: Resource<T>, obj: T): T {
    return this.#write(r, structuredClone(obj), "ADDED");
  }

  objects<T extends KubeObject>(r: Resource<T>): T[] {
    return [...this.#objects.entries()].filter(([k]) => k.startsWith(`${r.plural}/`)).map(([, o]) => o as T);
  }

  async get<T extends KubeObject>(
    r: Resource<T>,
    namespace: string | undefined,
    name: string,
    opts: RequestOptions = {},
  ): Promise<T> {
    await this.#enter("get", opts.signal);
    this.#record("get", r, namespace, name);
    return structuredClone(this.#must(r, namespace, name) as T);
  }

  async list<T extends KubeObject>(
    r: Resource<T>,
    namespace?: string,
    opts: ListOptions = {},
  ): Promise<ListResult<T>> {
    await this.#enter("list", opts.signal);
    this.#record("list", r, namespace);
    const items = this.objects(r).filter((o) => !namespace || o.metadata?.namespace === namespace);
    return { items: structuredClone(items), resourceVersion: String(this.#rv) };
  }

  watch<T extends KubeObject>(
    r: Resource<T>,
    namespace: string | undefined,
    _opts: { resourceVersion: string },
    onEvent: (type: WatchEventType, obj: T) => void,
  ): WatchHandle {
    let end!: () => void;
    const done = new Promise<void>((resolve) => {
      end = resolve;
    });
    try {
      this.#record("watch", r, namespace);
    } catch (err) {
      const opened = Promise.reject(err);
      opened.catch(() => {});
      return { opened, done: Promise.reject(err), stop() {} };
    }
    const w: Watcher = { plural: r.plural, namespace, onEvent: onEvent as Watcher["onEvent"], end };
    this.#watchers.add(w);
    return {
      opened: Promise.resolve(),
      done,
      stop: () => {
        this.#watchers.delete(w);
        end();
      },
    };
  }

  /** Ends every open watch normally (as a server timeout would). */
  closeWatches(): void {
    for (const w of this.#watchers) w.end();
    this.#watchers.clear();
  }

  async create<T extends KubeObject>(r: Resource<T>, obj: T, opts: WriteOptions = {}): Promise<T> {
    await this.#enter("create", opts.signal);
    const { namespace, name } = obj.metadata ?? {};
    this.#record("create", r, namespace, name);
    if (this.#objects.has(this.#key(r, namespace, name ?? "")))
      throw apiError(409, "AlreadyExists", `${name} exists`);
    return structuredClone(this.#write(r, structuredClone(obj), "ADDED"));
  }

  async replace<T extends KubeObject>(r: Resource<T>, obj: T, opts: WriteOptions = {}): Promise<T> {
    await this.#enter("replace", opts.signal);
    const { namespace, name, resourceVersion } = obj.metadata ?? {};
    this.#record("replace", r, namespace, name);
    const current = this.#must(r, namespace, name ?? "");
    if (resourceVersion && resourceVersion !== current.metadata?.resourceVersion) {
      throw apiError(
        409,
        "Conflict",
        "the object has been modified; please apply your changes to the latest version",
      );
    }
    const next = structuredClone(obj);
    next.metadata = { ...next.metadata, uid: current.metadata?.uid };
    return structuredClone(this.#write(r, next, "MODIFIED"));
  }

  async patch<T extends KubeObject>(
    r: Resource<T>,
    namespace: string | undefined,
    name: string,
    body: unknown,
    opts: PatchOptions,
  ): Promise<T> {
    await this.#enter("patch", opts.signal);
    this.#record("patch", r, namespace, name, opts.subresource);
    const key = this.#key(r, namespace, name);
    const current = this.#objects.get(key);
    if (!current && opts.type !== "apply") throw apiError(404, "NotFound", `${r.plural} ${name} not found`);
    let next: KubeObject;
    if (opts.type === "json") next = applyJsonPatch(structuredClone(current as KubeObject), body as JsonOp[]);
    else next = mergePatch(structuredClone(current ?? {}), body) as KubeObject;
    if (current && semanticJson(current) === semanticJson(next)) return structuredClone(current as T); // no-op write
    return structuredClone(this.#write(r, next as T, current ? "MODIFIED" : "ADDED"));
  }

  async delete(
    r: Resource,
    namespace: string | undefined,
    name: string,
    opts: DeleteOptions = {},
  ): Promise<void> {
    await this.#enter("delete", opts.signal);
    this.#record("delete", r, namespace, name);
    const obj = this.#must(r, namespace, name);
    if (obj.metadata?.finalizers?.length) {
      if (!obj.metadata.deletionTimestamp) {
        obj.metadata.deletionTimestamp = new Date().toISOString();
        this.#write(r, obj, "MODIFIED");
      }
      return;
    }
    this.#objects.delete(this.#key(r, namespace, name));
    this.#notify(r, "DELETED", obj);
  }

  #write<T extends KubeObject>(r: Resource<T>, obj: T, type: WatchEventType): T {
    const meta = obj.metadata ?? {};
    obj.apiVersion ??= r.apiVersion;
    obj.kind ??= r.kind;
    obj.metadata = { ...meta, resourceVersion: String(++this.#rv), uid: meta.uid ?? `uid-${this.#rv}` };
    const key = this.#key(r, meta.namespace, meta.name ?? "");
    // An object being deleted goes once its last finalizer is removed, as on a real server.
    if (obj.metadata.deletionTimestamp && !obj.metadata.finalizers?.length) {
      this.#objects.delete(key);
      this.#notify(r, "DELETED", obj);
      return obj;
    }
    this.#objects.set(key, obj);
    this.#notify(r, type, obj);
    return obj;
  }

  #notify(r: Resource, type: WatchEventType, obj: KubeObject): void {
    if (this.#held) {
      const copy = structuredClone(obj);
      this.#held.push(() => this.#notify(r, type, copy));
      return;
    }
    for (const w of this.#watchers) {
      if (w.plural === r.plural && (!w.namespace || w.namespace === obj.metadata?.namespace)) {
        w.onEvent(type, structuredClone(obj));
      }
    }
  }

  #must(r: Resource, namespace: string | undefined, name: string): KubeObject {
    const obj = this.#objects.get(this.#key(r, namespace, name));
    if (!obj) throw apiError(404, "NotFound", `${r.plural} "${name}" not found`);
    return obj;
  }

  #key(r: Resource, namespace: string | undefined, name: string): string {
    return `${r.plural}/${namespace ?? ""}/${name}`;
  }

  /** An aborted signal fails the call as a real client would; a hanging verb waits for the abort. */
  async #enter(verb: Verb, signal: AbortSignal | undefined): Promise<void> {
    if (signal?.aborted) throw signal.reason;
    if (!this.#hanging.has(verb)) return;
    await new Promise<never>((_, reject) => {
      signal?.addEventListener("abort", () => reject(signal.reason), { once: true });
    });
  }

  #record(verb: Verb, r: Resource, namespace?: string, name?: string, subresource?: string): void {
    this.actions.push({ verb, plural: r.plural, namespace, name, subresource });
    const i = this.#failures.findIndex((f) => f.verb === verb);
    if (i >= 0) throw this.#failures.splice(i, 1)[0]?.err;
  }
}

export function apiError(code: number, reason: string, message: string): ApiError {
  return new ApiError(code, message, { kind: "Status", code, reason, message }, {});
}

type JsonOp = { op: "add" | "remove" | "replace" | "test"; path: string; value?: unknown };

function applyJsonPatch(doc: KubeObject, ops: JsonOp[]): KubeObject {
  for (const op of ops) {
    const parts = op.path
      .split("/")
      .slice(1)
      .map((p) => p.replace(/~1/g, "/").replace(/~0/g, "~"));
    const last = parts.pop() as string;
    let parent: Record<string, unknown> | unknown[] = doc as Record<string, unknown>;
    for (const p of parts) parent = (parent as Record<string, unknown>)[p] as Record<string, unknown>;
    if (parent === undefined) throw apiError(422, "Invalid", `path ${op.path} not found`);
    const arr = Array.isArray(parent) ? parent : undefined;
    const rec = parent as Record<string, unknown>;
    if (op.op === "test") {
      if (JSON.stringify(rec[last]) !== JSON.stringify(op.value)) {
        // What the API server answers for a failed `test`: a bare 422 without field causes.
        throw apiError(422, "Invalid", "the server rejected our request due to an error in our request");
      }
    } else if (op.op === "remove") {
      if (arr) arr.splice(Number(last), 1);
      else delete rec[last];
    } else if (arr && op.op === "add") {
      arr.splice(last === "-" ? arr.length : Number(last), 0, op.value);
    } else {
      rec[last] = op.value;
    }
  }
  return doc;
}

function mergePatch(target: unknown, patch: unknown): unknown {
  if (typeof patch !== "object" || patch === null || Array.isArray(patch)) return structuredClone(patch);
  const out: Record<string, unknown> =
    typeof target === "object" && target !== null && !Array.isArray(target) ? { ...(target as object) } : {};
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete out[k];
    else out[k] = mergePatch(out[k], v);
  }
  return out;
}

function semanticJson(o: unknown): string {
  return JSON.stringify(o, (_k, v) =>
    v && typeof v === "object" && !Array.isArray(v)
      ? Object.fromEntries(Object.entries(v).sort(([a], [b]) => a.localeCompare(b)))
      : v,
  );
}
