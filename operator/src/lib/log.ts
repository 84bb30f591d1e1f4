// Structured JSON logs (pino). Every line passes through redact(), so a Secret, an env var named
// *TOKEN* or an hf_ token in an error message never reaches the log stream.
import { type DestinationStream, type Level, type Logger, pino } from "pino";
import { redact, redactString } from "./redact.ts";

export type { Logger } from "pino";

export function createLogger(
  opts: { level?: Level | "silent"; name?: string; destination?: DestinationStream } = {},
): Logger {
  return pino(
    {
      level: opts.level ?? "info",
      name: opts.name,
      base: undefined, // no pid/hostname noise; the pod name is in the Kubernetes metadata
      timestamp: pino.stdTimeFunctions.isoTime,
      // formatters.log has already turned errors into redacted plain objects; keep pino's own
      // err serializer from re-serialising (and un-redacting) raw Errors.
      serializers: { err: passErrors, error: passErrors },
      formatters: {
        level: (label) => ({ level: label }),
        log: (obj) => redact(obj) as Record<string, unknown>,
      },
      hooks: {
        // Redacts the message string itself (and printf-style arguments).
        logMethod(args, method) {
          method.apply(
            this,
            args.map((a) => (typeof a === "string" ? redactString(a) : a)) as Parameters<typeof method>,
          );
        },
      },
    },
    opts.destination ?? pino.destination({ sync: false }),
  );
}

const passErrors = (v: unknown) => (v instanceof Error ? redact(v) : v);

export const silentLogger: Logger = pino({ level: "silent" });
