// The client a Manager hands its controllers: every call carries the Manager's write signal, and a
// write is refused outright while that signal is aborted (not leading yet, leadership lost,
// stopping). With the leader elector ending the term the moment its renew deadline passes, this is
// what makes "a leader that cannot renew stops writing before its lease can pass a standby" hold
// for every controller without each one threading a signal through every call.
import type {
  Client,
  DeleteOptions,
  ListOptions,
  PatchOptions,
  RequestOptions,
  WatchEventType,
  WatchHandle,
  WatchOptions,
  WriteOptions,
} from "./client.ts";
import type { KubeObject, Resource } from "./rest.ts";

/** A write attempted while this replica may not write (it does not hold leadership). */
export class NotLeaderError extends Error {
  override name = "NotLeaderError";
}

export class FencedClient implements Client {
  readonly #inner: Client;
  readonly #writable: () => AbortSignal;

  /** writable() returns the current write signal: aborted = writes refused, in-flight ones cut. */
  constructor(inner: Client, writable: () => AbortSignal) {
    this.#inner = inner;
    this.#writable = writable;
  }

  get<T extends KubeObject>(r: Resource<T>, ns: string | undefined, name: string, opts: RequestOptions = {}) {
    return this.#inner.get(r, ns, name, { ...opts, signal: this.#signal(opts.signal) });
  }

  list<T extends KubeObject>(r: Resource<T>, ns?: string, opts: ListOptions = {}) {
    return this.#inner.list(r, ns, { ...opts, signal: this.#signal(opts.signal) });
  }

  watch<T extends KubeObject>(
    r: Resource<T>,
    ns: string | undefined,
    opts: WatchOptions,
    onEvent: (type: WatchEventType, obj: T) => void,
  ): WatchHandle {
    return this.#inner.watch(r, ns, { ...opts, signal: this.#signal(opts.signal) }, onEvent);
  }

  async create<T extends KubeObject>(r: Resource<T>, obj: T, opts: WriteOptions = {}): Promise<T> {
    return this.#inner.create(r, obj, { ...opts, signal: this.#writeSignal("create", r, opts.signal) });
  }

  async replace<T extends KubeObject>(r: Resource<T>, obj: T, opts: WriteOptions = {}): Promise<T> {
    return this.#inner.replace(r, obj, { ...opts, signal: this.#writeSignal("replace", r, opts.signal) });
  }

  async patch<T extends KubeObject>(
    r: Resource<T>,
    ns: string | undefined,
    name: string,
    body: unknown,
    opts: PatchOptions,
  ): Promise<T> {
    return this.#inner.patch(r, ns, name, body, {
      ...opts,
      signal: this.#writeSignal("patch", r, opts.signal),
    });
  }

  async delete(r: Resource, ns: string | undefined, name: string, opts: DeleteOptions = {}): Promise<void> {
    return this.#inner.delete(r, ns, name, { ...opts, signal: this.#writeSignal("delete", r, opts.signal) });
  }

  /** Reads are never refused (a standby may read), but a term that ends cuts the ones in flight. */
  #signal(own: AbortSignal | undefined): AbortSignal | undefined {
    const fence = this.#writable();
    if (fence.aborted) return own;
    return own ? AbortSignal.any([fence, own]) : fence;
  }

  #writeSignal(verb: string, r: Resource, own: AbortSignal | undefined): AbortSignal {
    const fence = this.#writable();
    if (fence.aborted) {
      const why = fence.reason instanceof Error ? fence.reason.message : "not leading";
      throw new NotLeaderError(`${verb} ${r.plural} refused: this replica may not write (${why})`);
    }
    return own ? AbortSignal.any([fence, own]) : fence;
  }
}
