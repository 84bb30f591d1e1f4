// The operator process: configuration from flags and environment, then the manager until SIGTERM.
import { ConfigError, configHelp, loadConfig } from "./lib/config.ts";
import { ConnectionError, loadConnection } from "./lib/connection.ts";
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
let connection: ReturnType<typeof loadConnection>;
try {
  connection = loadConnection(process.env, {
    context: config.kubeContext || undefined,
    connectTimeoutMs: config.connectTimeoutMs,
  });
} catch (err) {
  if (!(err instanceof ConnectionError)) throw err;
  console.error(err.message);
  process.exit(2);
}
const manager = buildOperator({ connection, config, logger });
manager.stopOnSignals();
try {
  await manager.start();
} catch (err) {
  // Caches could not sync: the message names the resource and the missing verb or CRD.
  logger.error({ err }, "start-up failed");
  process.exit(1);
}
await manager.stopped.then(
  () => process.exit(0),
  (err: Error) => {
    logger.error({ err }, "operator stopped");
    process.exit(1);
  },
);
