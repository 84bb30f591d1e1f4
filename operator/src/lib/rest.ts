// Where each kind lives in the REST API. A small static table instead of discovery: the operator
// touches a fixed set of kinds, and a table is synchronous, testable and fails loudly on a typo.
import type {
  CoreV1Event,
  KubernetesObject,
  V1ConfigMap,
  V1Deployment,
  V1Job,
  V1Lease,
  V1PersistentVolumeClaim,
  V1Pod,
  V1Secret,
  V1Service,
} from "@kubernetes/client-node";

/**
 * An API type as it arrives on the wire: client-node's models type timestamps as Date (after its
 * ObjectSerializer), but this library passes plain JSON through, where they are RFC 3339 strings.
 */
export type Wire<T> = T extends Date
  ? string
  : T extends (infer U)[]
    ? Wire<U>[]
    : T extends object
      ? { [K in keyof T]: Wire<T[K]> }
      : T;

/** Any API object as plain wire JSON (the constraint of every generic in this library). */
export type KubeObject = Wire<KubernetesObject>;

/** A kind's REST coordinates; T is the object type the cache and helpers hand back. */
export interface Resource<T extends KubeObject = KubeObject> {
  readonly apiVersion: string;
  readonly kind: string;
  readonly plural: string;
  readonly namespaced: boolean;
  /** Phantom field carrying T; never set. */
  readonly __type?: T;
}

export function resource<T extends KubeObject>(
  apiVersion: string,
  kind: string,
  plural: string,
  namespaced = true,
): Resource<T> {
  return { apiVersion, kind, plural, namespaced };
}

/** A SpecOps custom kind from its definition in operator/src/api/kinds.ts. */
export function customResource<T extends KubeObject>(
  apiVersion: string,
  def: { kind: string; plural: string },
): Resource<T> {
  return resource<T>(apiVersion, def.kind, def.plural);
}

export const Pods = resource<Wire<V1Pod>>("v1", "Pod", "pods");
export const Services = resource<Wire<V1Service>>("v1", "Service", "services");
export const ConfigMaps = resource<Wire<V1ConfigMap>>("v1", "ConfigMap", "configmaps");
export const Secrets = resource<Wire<V1Secret>>("v1", "Secret", "secrets");
export const PersistentVolumeClaims = resource<Wire<V1PersistentVolumeClaim>>(
  "v1",
  "PersistentVolumeClaim",
  "persistentvolumeclaims",
);
export const CoreEvents = resource<Wire<CoreV1Event>>("v1", "Event", "events");
export const Jobs = resource<Wire<V1Job>>("batch/v1", "Job", "jobs");
export const Deployments = resource<Wire<V1Deployment>>("apps/v1", "Deployment", "deployments");
export const Leases = resource<Wire<V1Lease>>("coordination.k8s.io/v1", "Lease", "leases");
export const Events = resource<KubeObject>("events.k8s.io/v1", "Event", "events");

/** Lookup by apiVersion + kind, for helpers that receive a whole object (apply). */
export class ResourceTable {
  readonly #byKind = new Map<string, Resource>();

  constructor(resources: Iterable<Resource> = []) {
    for (const r of resources) this.register(r);
  }

  register(r: Resource): this {
    this.#byKind.set(`${r.apiVersion}/${r.kind}`, r);
    return this;
  }

  forObject(obj: { apiVersion?: string; kind?: string }): Resource {
    const r = this.#byKind.get(`${obj.apiVersion}/${obj.kind}`);
    if (!r) {
      throw new Error(`no REST mapping for ${obj.apiVersion} ${obj.kind}: register it in the ResourceTable`);
    }
    return r;
  }
}

export const CORE_RESOURCES: readonly Resource[] = [
  Pods,
  Services,
  ConfigMaps,
  Secrets,
  PersistentVolumeClaims,
  CoreEvents,
  Jobs,
  Deployments,
  Leases,
  Events,
] as Resource[];

/** /api/v1 or /apis/group/version, then the namespace (when given) and plural. */
export function collectionPath(r: Resource, namespace?: string): string {
  const base = r.apiVersion.includes("/") ? `/apis/${r.apiVersion}` : `/api/${r.apiVersion}`;
  if (!r.namespaced || !namespace) return `${base}/${r.plural}`;
  return `${base}/namespaces/${encodeURIComponent(namespace)}/${r.plural}`;
}

export function objectPath(
  r: Resource,
  namespace: string | undefined,
  name: string,
  subresource?: string,
): string {
  if (r.namespaced && !namespace) throw new Error(`${r.kind} ${name}: namespace required`);
  const path = `${collectionPath(r, namespace)}/${encodeURIComponent(name)}`;
  return subresource ? `${path}/${subresource}` : path;
}

/** "namespace/name" (or "name" for cluster-scoped objects), the work-queue key. */
export function keyOf(obj: { metadata?: { namespace?: string; name?: string } }): string {
  const ns = obj.metadata?.namespace;
  return ns ? `${ns}/${obj.metadata?.name ?? ""}` : (obj.metadata?.name ?? "");
}

export function parseKey(key: string): { namespace: string | undefined; name: string } {
  const i = key.indexOf("/");
  return i < 0 ? { namespace: undefined, name: key } : { namespace: key.slice(0, i), name: key.slice(i + 1) };
}
