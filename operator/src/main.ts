// The operator process: configuration from flags and environment, then the manager until SIGTERM.
import { KubeConfig } from "@kubernetes/client-node";
import { ConfigError, configHelp, loadConfig } from "./lib/config.ts";
import { createLogger } from "./lib/log.ts";
import { buildOperator } from "./operator.ts";

if (process.argv.includes("--help")) {
  console.log(`specops-operator [flags]\n${configHelp()}`);
  process.exit(0);
}
let config: ReturnType<typeof loadConfig>;
try {
  config = loadConfig(process.argv.slice(2), process.env);
} catch (err) {
  if (!(err instanceof ConfigError)) throw err;
  console.error(err.message);
  process.exit(2);
}
const logger = createLogger({ level: config.logLevel, name: "specops-operator" });
const kubeConfig = new KubeConfig();
kubeConfig.loadFromDefault();
const manager = buildOperator({ kubeConfig, config, logger });
manager.stopOnSignals();
await manager.start();
await manager.stopped.then(
  () => process.exit(0),
  (err: Error) => {
    logger.error({ err }, "operator stopped");
    process.exit(1);
  },
);
