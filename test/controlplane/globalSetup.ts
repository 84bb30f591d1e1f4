// vitest globalSetup for integration tests: one real control plane for the run, its kubeconfig
// handed to the tests through `inject("kubeconfigPath")`, torn down even when tests fail.
import type { TestProject } from "vitest/node";
import { type ControlPlane, startControlPlane } from "./controlplane.ts";

let controlPlane: ControlPlane | undefined;

export async function setup(project: TestProject): Promise<void> {
  controlPlane = await startControlPlane({ startTimeoutSeconds: 120 });
  project.provide("kubeconfigPath", controlPlane.kubeconfigPath);
  project.provide("restrictedUser", controlPlane.restrictedUser);
}

export async function teardown(): Promise<void> {
  await controlPlane?.stop();
}

declare module "vitest" {
  export interface ProvidedContext {
    kubeconfigPath: string;
    restrictedUser: { name: string; kubeconfigPath: string };
  }
}
