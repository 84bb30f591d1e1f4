// How operator/Dockerfile runs the operator, read from the file so a bench runs it the same way:
// the node flags on the ENTRYPOINT (V8 flags NODE_OPTIONS does not accept), NODE_OPTIONS,
// MALLOC_ARENA_MAX, and a compile cache filled beforehand as the image's build fills its own.
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

export interface OperatorImageSettings {
  /** Node flags between `node` and the script on the image's ENTRYPOINT. */
  nodeArgs: string[];
  nodeOptions: string;
  mallocArenas: string | undefined;
}

export function operatorImageSettings(root: string): OperatorImageSettings {
  const dockerfile = readFileSync(join(root, "operator/Dockerfile"), "utf8");
  const entrypoint = JSON.parse(dockerfile.match(/^ENTRYPOINT (\[.*\])$/m)?.[1] ?? "[]") as string[];
  return {
    nodeArgs: entrypoint.slice(1, -1),
    nodeOptions: dockerfile.match(/NODE_OPTIONS="([^"]*)"/)?.[1] ?? "",
    mallocArenas: dockerfile.match(/MALLOC_ARENA_MAX=(\d+)/)?.[1],
  };
}

/**
 * A compile cache filled by `main.ts --help` with the image's node flags. Node keys the cache's
 * folder by V8's flags (and the user), so one filled with other flags is never read.
 */
export function filledCompileCache(root: string, nodeArgs: string[]): { dir: string; remove(): void } {
  const dir = mkdtempSync(join(tmpdir(), "specops-bench-compile-cache-"));
  execFileSync(process.execPath, [...nodeArgs, join(root, "operator/src/main.ts"), "--help"], {
    env: { ...process.env, NODE_COMPILE_CACHE: dir },
    stdio: "ignore",
  });
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}
