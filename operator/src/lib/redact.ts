// Keeps secrets out of logs and events. Applied to every log line by createLogger, and usable on
// anything else that leaves the process (event notes, condition messages).

export const REDACTED = "[REDACTED]";

/** Names whose values are secret: env vars, map keys, flags. */
const SENSITIVE_NAME = /token|key|secret|password|passwd|credential/i;

const PATTERNS: [RegExp, string][] = [
  [/\bhf_[A-Za-z0-9]{8,}/g, `hf_${REDACTED}`], // Hugging Face tokens
  [/\b(?:AKIA|ASIA|AGPA|AIDA|AROA|ANPA)[A-Z0-9]{16}\b/g, REDACTED], // AWS access key ids
  [/(aws_secret_access_key|aws_session_token)(["']?\s*[=:]\s*["']?)[A-Za-z0-9/+=]{16,}/gi, `$1$2${REDACTED}`],
  [/\b(Bearer|Basic)\s+[A-Za-z0-9._~+/=-]{8,}/g, `$1 ${REDACTED}`],
  [/\bgh[pousr]_[A-Za-z0-9]{20,}/g, REDACTED], // GitHub tokens
  // NAME=value / "name": "value" where the name looks secret (HF_TOKEN=..., --api-key value).
  [
    /\b([A-Za-z0-9_-]*(?:token|secret|password|passwd|api[_-]?key|access[_-]?key)[A-Za-z0-9_-]*)(["']?\s*[=:]\s*["']?)([^\s"',}]+)/gi,
    `$1$2${REDACTED}`,
  ],
];

export function redactString(s: string): string {
  let out = s;
  for (const [re, replacement] of PATTERNS) out = out.replace(re, replacement);
  return out;
}

export function isSensitiveName(name: string): boolean {
  return SENSITIVE_NAME.test(name);
}

/**
 * A deep copy of value with secrets replaced: Secret data/stringData, env entries with sensitive
 * names, object keys with sensitive names, and token-shaped substrings anywhere.
 */
export function redact(value: unknown, seen = new WeakSet<object>()): unknown {
  if (typeof value === "string") return redactString(value);
  if (typeof value !== "object" || value === null) return value;
  if (seen.has(value)) return "[Circular]";
  seen.add(value);
  if (value instanceof Error) {
    // Errors become plain objects (type, message, code, stack, cause), all redacted.
    const code = (value as { code?: unknown }).code;
    return {
      type: value.name === "Error" ? value.constructor.name : value.name,
      message: redactString(value.message),
      ...(code !== undefined ? { code } : {}),
      ...(value.stack ? { stack: redactString(value.stack) } : {}),
      ...(value.cause !== undefined ? { cause: redact(value.cause, seen) } : {}),
    };
  }
  if (Array.isArray(value)) return value.map((v) => redact(v, seen));
  const obj = value as Record<string, unknown>;
  const isSecret = obj.kind === "Secret";
  const isEnvVar = typeof obj.name === "string" && "value" in obj && Object.keys(obj).length <= 3;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(obj)) {
    if (isSecret && (k === "data" || k === "stringData") && v && typeof v === "object") {
      out[k] = Object.fromEntries(Object.keys(v).map((dk) => [dk, REDACTED]));
    } else if (isEnvVar && k === "value" && isSensitiveName(obj.name as string)) {
      out[k] = REDACTED;
    } else if (typeof v === "string" && isSensitiveName(k) && !NOT_SECRET_KEYS.has(k)) {
      out[k] = REDACTED;
    } else {
      out[k] = redact(v, seen);
    }
  }
  return out;
}

/** Keys that match the sensitive pattern but hold no secret (work-queue keys, selectors). */
const NOT_SECRET_KEYS = new Set(["key", "keys", "secretName", "secretKeyRef", "tokenSecret", "reasonKey"]);
