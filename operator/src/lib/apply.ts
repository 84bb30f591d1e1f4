// Server-side apply for children and status. Each controller applies with its own stable field
// manager ("specops-<controller>") and force, so it owns exactly the fields it sets; a field it
// stops setting is removed by the API server. Desired objects are built, never fetched-and-reapplied.
import type { V1OwnerReference } from "@kubernetes/client-node";
import type { Client } from "./client.ts";
import { semanticEqual } from "./equality.ts";
import { CORE_RESOURCES, type KubeObject, type Resource, ResourceTable } from "./rest.ts";

export const defaultResources = new ResourceTable(CORE_RESOURCES);

export interface ApplyOptions {
  fieldManager: string;
  /** REST mappings; default the core kinds. Register custom kinds here. */
  resources?: ResourceTable;
}

/** What apply returns: the desired shape, with the full server-side metadata. */
export type Applied<T> = Omit<T, "metadata"> & Pick<KubeObject, "metadata">;

/** SSA-applies desired (apiVersion, kind, metadata.name/namespace + the fields you own). */
export async function apply<T extends KubeObject>(
  client: Client,
  desired: T,
  opts: ApplyOptions,
): Promise<Applied<T>> {
  const meta = desired.metadata;
  if (!desired.apiVersion || !desired.kind || !meta?.name) {
    throw new Error("apply: desired object needs apiVersion, kind and metadata.name");
  }
  if (meta.resourceVersion || meta.managedFields || meta.uid) {
    // Re-applying a fetched object would claim every field in it (KFC's Finalize pitfall).
    throw new Error(`apply ${desired.kind} ${meta.name}: pass built desired state, not a fetched object`);
  }
  const r = (opts.resources ?? defaultResources).forObject(desired) as Resource<Applied<T>>;
  return client.patch(r, meta.namespace, meta.name, desired, {
    type: "apply",
    fieldManager: opts.fieldManager,
    force: true,
    fieldValidation: "Strict",
  });
}

/** An ownerReference making owner the controller of a child (garbage collection + owner enqueue). */
export function controllerReference(owner: KubeObject): V1OwnerReference {
  const m = owner.metadata;
  if (!owner.apiVersion || !owner.kind || !m?.name || !m.uid) {
    throw new Error("controllerReference: owner needs apiVersion, kind, metadata.name and metadata.uid");
  }
  return {
    apiVersion: owner.apiVersion,
    kind: owner.kind,
    name: m.name,
    uid: m.uid,
    controller: true,
    blockOwnerDeletion: true,
  };
}

/** True when writing next over current would change nothing (key order and undefined ignored). */
export function statusUnchanged(current: unknown, next: unknown): boolean {
  return semanticEqual(current ?? {}, next ?? {});
}

/** The type of T's status field (unknown when T declares none). */
export type StatusOf<T> = T extends { status?: infer S } ? S : unknown;

/**
 * Writes status through the /status subresource with SSA, only when it differs from the status on
 * current (normally the cached object). Returns the updated object, or undefined when nothing was written.
 */
export async function updateStatus<T extends KubeObject>(
  client: Client,
  r: Resource<T>,
  current: NoInfer<T>,
  status: StatusOf<NoInfer<T>>,
  opts: { fieldManager: string },
): Promise<T | undefined> {
  if (statusUnchanged((current as { status?: unknown }).status, status)) return undefined;
  const { name, namespace } = current.metadata ?? {};
  if (!name) throw new Error("updateStatus: object has no name");
  const body = { apiVersion: r.apiVersion, kind: r.kind, metadata: { name, namespace }, status };
  return client.patch(r, namespace, name, body, {
    type: "apply",
    subresource: "status",
    fieldManager: opts.fieldManager,
    force: true,
    fieldValidation: "Strict",
  });
}
