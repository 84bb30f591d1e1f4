// Finalizers via JSON Patch guarded by a `test` on metadata.resourceVersion: the patch applies only
// to the exact version the caller read, so a concurrent writer's change is never clobbered. A lost
// race surfaces as ConflictError, which the controller requeues quietly.
import type { Client } from "./client.ts";
import { ConflictError, statusCode } from "./errors.ts";
import type { KubeObject, Resource } from "./rest.ts";

export function hasFinalizer(obj: KubeObject, finalizer: string): boolean {
  return obj.metadata?.finalizers?.includes(finalizer) ?? false;
}

/** The JSON Patch that adds finalizer to obj (pure). */
export function addFinalizerPatch(obj: KubeObject, finalizer: string): object[] {
  const test = { op: "test", path: "/metadata/resourceVersion", value: obj.metadata?.resourceVersion };
  return obj.metadata?.finalizers
    ? [test, { op: "add", path: "/metadata/finalizers/-", value: finalizer }]
    : [test, { op: "add", path: "/metadata/finalizers", value: [finalizer] }];
}

/** The JSON Patch that removes finalizer from obj (pure); undefined when it isn't there. */
export function removeFinalizerPatch(obj: KubeObject, finalizer: string): object[] | undefined {
  const i = obj.metadata?.finalizers?.indexOf(finalizer) ?? -1;
  if (i < 0) return undefined;
  return [
    { op: "test", path: "/metadata/resourceVersion", value: obj.metadata?.resourceVersion },
    { op: "test", path: `/metadata/finalizers/${i}`, value: finalizer },
    { op: "remove", path: `/metadata/finalizers/${i}` },
  ];
}

/** Adds finalizer (before any side effect). Returns the updated object, or undefined if already present. */
export async function addFinalizer<T extends KubeObject>(
  client: Client,
  r: Resource<T>,
  obj: T,
  finalizer: string,
): Promise<T | undefined> {
  if (hasFinalizer(obj, finalizer)) return undefined;
  return guarded(client, r, obj, addFinalizerPatch(obj, finalizer));
}

/** Removes finalizer (after cleanup). Returns the updated object, or undefined if it wasn't there. */
export async function removeFinalizer<T extends KubeObject>(
  client: Client,
  r: Resource<T>,
  obj: T,
  finalizer: string,
): Promise<T | undefined> {
  const patch = removeFinalizerPatch(obj, finalizer);
  if (!patch) return undefined;
  return guarded(client, r, obj, patch);
}

async function guarded<T extends KubeObject>(
  client: Client,
  r: Resource<T>,
  obj: T,
  patch: object[],
): Promise<T> {
  const { name, namespace, resourceVersion } = obj.metadata ?? {};
  if (!name || !resourceVersion)
    throw new Error("finalizer patch needs metadata.name and metadata.resourceVersion");
  try {
    return await client.patch(r, namespace, name, patch, { type: "json" });
  } catch (err) {
    // 409, or the bare 422 the API server answers when a JSON Patch op (our `test`) fails — it has
    // no field causes, unlike a validation 422 ("the server rejected our request due to an error
    // in our request"). Either way someone wrote in between.
    const code = statusCode(err);
    const causes = (err as { body?: { details?: { causes?: unknown[] } } }).body?.details?.causes;
    if (code === 409 || (code === 422 && !causes?.length)) {
      throw new ConflictError(
        `${r.kind} ${namespace}/${name} changed since resourceVersion ${resourceVersion}`,
        {
          cause: err,
        },
      );
    }
    throw err;
  }
}
