// Helpers for integration tests against the real control plane started by globalSetup.
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import {
  ApiException,
  ApiextensionsV1Api,
  CoreV1Api,
  KubeConfig,
  type KubernetesObject,
} from "@kubernetes/client-node";
import yaml from "js-yaml";
import { Agent, fetch } from "undici";
import { inject } from "vitest";
import { EXAMPLES_DIR } from "../fixtures/examples.ts";

export function kubeConfig(): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromFile(inject("kubeconfigPath"));
  return kc;
}

/**
 * A kubeconfig for a user holding only the given cluster rules (bound through a ClusterRole), so a
 * test can prove the operator needs no permission beyond what its code declares.
 */
export async function restrictedKubeConfig(
  admin: KubeConfig,
  roleName: string,
  rules: readonly object[],
  /** The user of admin's control plane to bind (default: the shared control plane's). */
  user: { name: string; kubeconfigPath: string } = inject("restrictedUser"),
): Promise<KubeConfig> {
  const role = {
    apiVersion: "rbac.authorization.k8s.io/v1",
    kind: "ClusterRole",
    metadata: { name: roleName },
    rules,
  };
  const binding = {
    apiVersion: "rbac.authorization.k8s.io/v1",
    kind: "ClusterRoleBinding",
    metadata: { name: roleName },
    roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "ClusterRole", name: roleName },
    subjects: [{ apiGroup: "rbac.authorization.k8s.io", kind: "User", name: user.name }],
  };
  for (const [plural, obj] of [
    ["clusterroles", role],
    ["clusterrolebindings", binding],
  ] as const) {
    const res = await kubeRequest(
      admin,
      "PATCH",
      `/apis/rbac.authorization.k8s.io/v1/${plural}/${roleName}?fieldManager=${FIELD_MANAGER}&force=true`,
      obj,
      "application/apply-patch+yaml",
    );
    if (res.status >= 300) throw new Error(`RBAC ${plural}: ${res.body?.message}`);
  }
  const kc = new KubeConfig();
  kc.loadFromFile(user.kubeconfigPath);
  return kc;
}

const CRD_DIR = join(EXAMPLES_DIR, "../crds");
const FIELD_MANAGER = "specops-tests";

export interface RawResponse {
  status: number;
  body: any;
}

/**
 * A request with the kubeconfig's credentials and the raw JSON body. client-node's typed
 * serializers drop keys they don't model (x-kubernetes-validations, x-kubernetes-int-or-string),
 * so CRDs and custom objects go through here unchanged.
 */
export async function kubeRequest(
  kc: KubeConfig,
  method: string,
  path: string,
  body?: unknown,
  contentType = "application/json",
  accept = "application/json",
): Promise<RawResponse> {
  const cluster = kc.getCurrentCluster();
  const token = kc.getCurrentUser()?.token;
  const res = await fetch(`${cluster?.server}${path}`, {
    method,
    headers: { "content-type": contentType, accept, authorization: `Bearer ${token}` },
    body: body === undefined ? undefined : JSON.stringify(body),
    dispatcher: new Agent({ connect: { ca: Buffer.from(cluster?.caData ?? "", "base64") } }),
  });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : undefined };
}

/** A GET of a path answering text (the API server's /metrics), with the kubeconfig's credentials. */
export async function kubeRequestText(kc: KubeConfig, path: string): Promise<string> {
  const cluster = kc.getCurrentCluster();
  const res = await fetch(`${cluster?.server}${path}`, {
    headers: { accept: "text/plain", authorization: `Bearer ${kc.getCurrentUser()?.token}` },
    dispatcher: new Agent({ connect: { ca: Buffer.from(cluster?.caData ?? "", "base64") } }),
  });
  const text = await res.text();
  if (res.status >= 300) throw new Error(`GET ${path}: ${res.status} ${text.slice(0, 200)}`);
  return text;
}

export async function installCrds(kc: KubeConfig): Promise<string[]> {
  const names: string[] = [];
  for (const file of readdirSync(CRD_DIR).filter((f) => f.endsWith(".yaml"))) {
    const crd = yaml.load(readFileSync(join(CRD_DIR, file), "utf8")) as KubernetesObject;
    const name = crd.metadata?.name ?? "";
    const res = await kubeRequest(
      kc,
      "PATCH",
      `/apis/apiextensions.k8s.io/v1/customresourcedefinitions/${name}?fieldManager=${FIELD_MANAGER}&force=true`,
      crd,
      "application/apply-patch+yaml",
    );
    if (res.status >= 300) throw new Error(`installing ${file}: ${res.status} ${res.body?.message}`);
    names.push(name);
  }
  const ext = kc.makeApiClient(ApiextensionsV1Api);
  const deadline = Date.now() + 30_000;
  for (const name of names) {
    for (;;) {
      const crd = await ext.readCustomResourceDefinition({ name });
      if (crd.status?.conditions?.some((c) => c.type === "Established" && c.status === "True")) break;
      if (Date.now() > deadline) throw new Error(`CRD ${name} not Established`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  return names;
}

export async function ensureNamespace(kc: KubeConfig, name: string): Promise<void> {
  await kc
    .makeApiClient(CoreV1Api)
    .createNamespace({ body: { metadata: { name } } })
    .catch((err) => {
      if (!(err instanceof ApiException && err.code === 409)) throw err;
    });
}

export { FIELD_MANAGER };
