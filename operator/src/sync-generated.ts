// Writes generated files, or with --check only reports the ones that differ from what would be
// written (CI's drift check). Shared by `npm run crds` and `npm run contract`.
import { readFileSync, writeFileSync } from "node:fs";
import { relative } from "node:path";

export function syncGenerated(
  root: string,
  files: Map<string, string>,
  opts: { command: string; done: string },
): void {
  const check = process.argv.includes("--check");
  const stale: string[] = [];
  for (const [path, content] of files) {
    let current: string | undefined;
    try {
      current = readFileSync(path, "utf8");
    } catch {
      current = undefined;
    }
    if (current === content) continue;
    if (check) stale.push(relative(root, path));
    else writeFileSync(path, content);
  }
  if (stale.length > 0) {
    console.error(`generated files are out of date; run ${opts.command}:\n  ${stale.join("\n  ")}`);
    process.exit(1);
  }
  console.log(check ? "generated files are up to date" : opts.done);
}
