// The pod template every SpecOps runtime pod shares: the runtime image with its agent entrypoint,
// the task document mounted from a ConfigMap, shared storage, credentials by Secret reference only,
// GPU limits and placement from the spec. Pure: the same inputs give the same template.
import type { z } from "zod";
import type { placement as placementSchema, podResources, runtimeImage } from "../../api/common.ts";
import {
  DEFAULT_PVC_ROOT,
  DEFAULT_TASK_PATH,
  PROGRESS_DEFAULT_PORT,
  RUNTIME_ENV,
  TERMINATION_MESSAGE_DEFAULT_PATH,
} from "../../contract/constants.ts";

type Placement = z.infer<typeof placementSchema>;
type PodResources = z.infer<typeof podResources>;
type RuntimeImage = z.infer<typeof runtimeImage>;

export interface RuntimePodInput {
  /** Operator-wide default runtime image; spec.runtime.image overrides it. */
  defaultImage: string;
  runtime?: RuntimeImage;
  placement?: Placement;
  resources: PodResources;
  gpus: number;
  /** ConfigMap holding task.json. */
  taskConfigMap: string;
  /** Claim mounted at DEFAULT_PVC_ROOT/<claim>, so pvc://<claim>/x resolves inside the pod. */
  claimName?: string;
  /** Further claims mounted the same way (an evaluation may read from one claim and write to another). */
  extraClaimNames?: string[];
  /** An emptyDir mounted here: scratch space for outputs that go to no claim. */
  scratchPath?: string;
  /** Secrets whose keys become env vars (credentials of models, data, outputs). */
  credentialSecrets: string[];
  progressPort?: number;
  env?: { name: string; value?: string; valueFrom?: object }[];
  labels: Record<string, string>;
  annotations?: Record<string, string>;
  /** Extra ports, e.g. the OpenAI endpoint of a server. */
  ports?: { name: string; containerPort: number }[];
  restartPolicy: "Never" | "OnFailure" | "Always";
  hostname?: string;
  subdomain?: string;
  readinessPath?: { path: string; port: number };
}

export const RUNTIME_CONTAINER = "runtime";
const TASK_VOLUME = "task";
const STORAGE_VOLUME = "storage";
const SCRATCH_VOLUME = "scratch";
/** Where a pod's scratch emptyDir is mounted (the local-process kubelet maps it to a pod folder). */
export const SCRATCH_PATH = "/mnt/specops/scratch";

export function runtimePodTemplate(input: RuntimePodInput): Record<string, unknown> {
  const progressPort = input.progressPort ?? PROGRESS_DEFAULT_PORT;
  const limits: Record<string, string> = {};
  const requests: Record<string, string> = {};
  if (input.gpus > 0) limits[input.resources.gpuResourceName] = String(input.gpus);
  for (const key of ["cpu", "memory"] as const) {
    const value = input.resources[key];
    if (value !== undefined) {
      limits[key] = String(value);
      requests[key] = String(value);
    }
  }
  const nodeSelector = { ...input.placement?.nodeSelector };
  if (input.resources.gpuProduct) nodeSelector["nvidia.com/gpu.product"] = input.resources.gpuProduct;

  const volumeMounts: object[] = [
    { name: TASK_VOLUME, mountPath: DEFAULT_TASK_PATH.replace(/\/[^/]+$/, ""), readOnly: true },
  ];
  const volumes: object[] = [{ name: TASK_VOLUME, configMap: { name: input.taskConfigMap } }];
  const claims = [...new Set([input.claimName, ...(input.extraClaimNames ?? [])])].filter((c): c is string =>
    Boolean(c),
  );
  claims.forEach((claimName, i) => {
    const name = i === 0 ? STORAGE_VOLUME : `${STORAGE_VOLUME}-${i}`;
    volumeMounts.push({ name, mountPath: `${DEFAULT_PVC_ROOT}/${claimName}` });
    volumes.push({ name, persistentVolumeClaim: { claimName } });
  });
  if (input.scratchPath) {
    volumeMounts.push({ name: SCRATCH_VOLUME, mountPath: input.scratchPath });
    volumes.push({ name: SCRATCH_VOLUME, emptyDir: {} });
  }
  const secrets = [...new Set(input.credentialSecrets)].sort();

  const container = dropEmpty({
    name: RUNTIME_CONTAINER,
    image: input.runtime?.image ?? input.defaultImage,
    imagePullPolicy: input.runtime?.imagePullPolicy,
    args: ["--task", DEFAULT_TASK_PATH],
    env: [
      { name: RUNTIME_ENV.task, value: DEFAULT_TASK_PATH },
      { name: RUNTIME_ENV.progressPort, value: String(progressPort) },
      { name: RUNTIME_ENV.pvcRoot, value: DEFAULT_PVC_ROOT },
      ...(input.env ?? []),
    ],
    envFrom: secrets.map((name) => ({ secretRef: { name } })),
    ports: [{ name: "progress", containerPort: progressPort }, ...(input.ports ?? [])],
    resources: dropEmpty({ limits, requests }),
    volumeMounts,
    terminationMessagePath: TERMINATION_MESSAGE_DEFAULT_PATH,
    terminationMessagePolicy: "FallbackToLogsOnError",
    readinessProbe: input.readinessPath
      ? { httpGet: { path: input.readinessPath.path, port: input.readinessPath.port }, periodSeconds: 5 }
      : undefined,
    securityContext: { runAsNonRoot: true, allowPrivilegeEscalation: false },
  });

  return {
    metadata: dropEmpty({ labels: input.labels, annotations: input.annotations }),
    spec: dropEmpty({
      restartPolicy: input.restartPolicy,
      hostname: input.hostname,
      subdomain: input.subdomain,
      serviceAccountName: input.placement?.serviceAccountName,
      schedulerName: input.placement?.schedulerName,
      priorityClassName: input.placement?.priorityClassName,
      nodeSelector,
      tolerations: input.placement?.tolerations,
      affinity: input.placement?.affinity,
      imagePullSecrets: input.runtime?.imagePullSecrets,
      containers: [container],
      volumes,
    }),
  };
}

/** Removes undefined values, empty objects and empty arrays, so applied objects carry only what is set. */
export function dropEmpty<T extends Record<string, unknown>>(o: T): T {
  return Object.fromEntries(
    Object.entries(o).filter(([, v]) => {
      if (v === undefined) return false;
      if (Array.isArray(v)) return v.length > 0;
      if (v && typeof v === "object") return Object.keys(v).length > 0;
      return true;
    }),
  ) as T;
}
