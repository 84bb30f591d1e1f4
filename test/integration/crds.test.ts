// The generated CRDs on a real kube-apiserver: they install, every example passes a server-side
// dry run, and every object of the invalid table is refused by the API server naming the field.
import type { KubeConfig } from "@kubernetes/client-node";
import { Agent, fetch } from "undici";
import { beforeAll, describe, expect, it } from "vitest";
import { loadExamples, type Manifest } from "../fixtures/examples.ts";
import { INVALID_CASES } from "../fixtures/invalid-objects.ts";
import { ensureNamespace, FIELD_MANAGER, installCrds, kubeConfig, kubeRequest } from "./kube.ts";

const NS = "crd-tests";
let kc: KubeConfig;

const pathOf = (m: { kind: string }, name?: string) => {
  const plural = `${m.kind.toLowerCase()}s`;
  return `/apis/specops.dev/v1alpha1/namespaces/${NS}/${plural}${name ? `/${name}` : ""}`;
};
const inNamespace = (m: Manifest, name?: string): Manifest => ({
  ...structuredClone(m),
  metadata: { name: name ?? m.metadata.name, namespace: NS },
});

beforeAll(async () => {
  kc = kubeConfig();
  const names = await installCrds(kc);
  expect(names.sort()).toEqual([
    "acceptanceevals.specops.dev",
    "drafttrainings.specops.dev",
    "specserves.specops.dev",
  ]);
  await ensureNamespace(kc, NS);
});

describe("examples", () => {
  it.each([...loadExamples()])("%s passes a server-side dry-run apply", async (_file, manifest) => {
    const obj = inNamespace(manifest);
    const res = await kubeRequest(
      kc,
      "PATCH",
      `${pathOf(obj, obj.metadata.name)}?dryRun=All&fieldManager=${FIELD_MANAGER}&fieldValidation=Strict`,
      obj,
      "application/apply-patch+yaml",
    );
    expect(res.body?.message).toBeUndefined();
    expect(res.status).toBe(201);
  });
});

describe("invalid objects are refused by the API server", () => {
  let counter = 0;
  it.each(INVALID_CASES.map((c) => [c.name, c] as const))("%s", async (_name, c) => {
    const name = `invalid-${++counter}`;
    const strict = `fieldManager=${FIELD_MANAGER}&fieldValidation=Strict`;
    if (c.object) {
      const res = await kubeRequest(
        kc,
        "POST",
        `${pathOf(c.object)}?dryRun=All&${strict}`,
        inNamespace(c.object, name),
      );
      expect(res.status).toBe(422);
      expect(res.body.message).toContain(`${c.field}:`);
      return;
    }
    if (!c.update) throw new Error("case has neither object nor update");
    const created = await kubeRequest(
      kc,
      "POST",
      `${pathOf(c.update.stored)}?${strict}`,
      inNamespace(c.update.stored, name),
    );
    expect(created.status).toBe(201);
    const changed = { ...inNamespace(c.update.changed, name), metadata: { ...created.body.metadata } };
    const res = await kubeRequest(kc, "PUT", `${pathOf(changed, name)}?dryRun=All&${strict}`, changed);
    expect(res.status).toBe(422);
    expect(res.body.message).toContain(`${c.field}:`);
    await kubeRequest(kc, "DELETE", pathOf(changed, name));
  });
});

describe("server-side defaulting, printer columns and the scale subresource", () => {
  it("fills nested defaults and shows the story in kubectl's table", async () => {
    const tiny = loadExamples().get("tiny-specserve.yaml") as Manifest;
    const created = await kubeRequest(kc, "POST", pathOf(tiny), inNamespace(tiny, "columns"));
    expect(created.status).toBe(201);
    expect(created.body.spec.rollout).toMatchObject({ maxTauDrop: 0.05, canaryReplicas: 1 });
    expect(created.body.spec.autoscaling.scaleDownStabilization).toBe("5m");

    const status = {
      replicas: 2,
      readyReplicas: 2,
      desiredReplicas: 3,
      selector: "app=x",
      signals: { tau: 3.25 },
      conditions: [
        {
          type: "SLOMet",
          status: "True",
          reason: "WithinSLO",
          message: "ok",
          lastTransitionTime: new Date().toISOString(),
        },
      ],
    };
    const patched = await kubeRequest(
      kc,
      "PATCH",
      `${pathOf(tiny, "columns")}/status`,
      { status },
      "application/merge-patch+json",
    );
    expect(patched.status).toBe(200);

    const cluster = kc.getCurrentCluster();
    const res = await fetch(`${cluster?.server}${pathOf(tiny, "columns")}`, {
      headers: {
        accept: "application/json;as=Table;v=v1;g=meta.k8s.io",
        authorization: `Bearer ${kc.getCurrentUser()?.token}`,
      },
      dispatcher: new Agent({ connect: { ca: Buffer.from(cluster?.caData ?? "", "base64") } }),
    });
    const table = (await res.json()) as {
      columnDefinitions: { name: string }[];
      rows: { cells: unknown[] }[];
    };
    const row = Object.fromEntries(table.columnDefinitions.map((c, i) => [c.name, table.rows[0]?.cells[i]]));
    expect(row).toMatchObject({
      Name: "columns",
      Engine: "reference",
      Method: "dflash",
      Desired: 3,
      Replicas: 2,
      Ready: 2,
      Tau: 3.25,
      SLO: "True",
    });

    const scale = await kubeRequest(kc, "GET", `${pathOf(tiny, "columns")}/scale`);
    expect(scale.body).toMatchObject({ spec: { replicas: 1 }, status: { replicas: 2, selector: "app=x" } });
  });
});
