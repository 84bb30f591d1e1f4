// `npm run cluster`: the integration tests' control plane in the foreground, for humans.
// Prints the kubeconfig path; Ctrl-C stops everything and removes the temp dir.
import { KubeConfig } from "@kubernetes/client-node";
import { startControlPlane } from "./controlplane.ts";
import { FakeKubelet } from "./kubelet.ts";

const cp = await startControlPlane({ startTimeoutSeconds: 180 });
const kc = new KubeConfig();
kc.loadFromFile(cp.kubeconfigPath);
const kubelet = new FakeKubelet(kc);
await kubelet.start();
console.log(`control plane ready at ${cp.server}
node ${kubelet.nodeName} is played by the fake kubelet (pods run until deleted)
  export KUBECONFIG=${cp.kubeconfigPath}
  kubectl apply -f crds/ && kubectl get specops
Ctrl-C to stop.`);
const stop = async () => {
  await kubelet.stop();
  await cp.stop();
  process.exit(0);
};
process.once("SIGINT", stop);
process.once("SIGTERM", stop);
