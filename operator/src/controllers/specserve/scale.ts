// The one write path to a SpecServe's spec.replicas that the operator side has: through the scale
// subresource, under the autoscaler's own field manager, exactly as an HPA writes a Deployment's
// scale. /scale then always tells the truth, and an HPA or KEDA can take the autoscaler's place.
// The SpecServe controller itself never writes any spec field.
import type { Client } from "../../lib/client.ts";
import type { Resource } from "../../lib/rest.ts";

export const AUTOSCALER_FIELD_MANAGER = "specops-autoscaler";

export interface ScaleWrite {
  namespace: string;
  name: string;
  replicas: number;
  signal?: AbortSignal;
}

/** Writes spec.replicas through /scale (a merge patch: the scale subresource has no apply schema). */
export async function writeReplicas(client: Client, specServes: Resource, w: ScaleWrite): Promise<number> {
  if (!Number.isInteger(w.replicas) || w.replicas < 0) {
    throw new Error(`writeReplicas: replicas must be a non-negative integer, got ${w.replicas}`);
  }
  const scale = (await client.patch(
    specServes,
    w.namespace,
    w.name,
    { spec: { replicas: w.replicas } },
    { type: "merge", subresource: "scale", fieldManager: AUTOSCALER_FIELD_MANAGER, signal: w.signal },
  )) as { spec?: { replicas?: number } };
  return scale.spec?.replicas ?? w.replicas;
}
