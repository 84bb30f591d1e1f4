// `npm run bench -- runtime`: the reference backend's benchmark (runtime/specops_runtime/reference/
// bench.py) in the project's Python environment: tau per method and task set, acceptance by
// position, decode tokens/s with and without speculation on this CPU, and the SPS(B) profile.
import { spawnSync } from "node:child_process";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "../..");
const setup = spawnSync("bash", [join(root, "runtime/scripts/setup-venv.sh")], { stdio: "inherit" });
if (setup.status !== 0) process.exit(setup.status ?? 1);
const bench = spawnSync(
  join(root, "runtime/.venv/bin/python"),
  ["-m", "specops_runtime.reference.bench", ...process.argv.slice(3)],
  { stdio: "inherit", cwd: join(root, "runtime") },
);
process.exit(bench.status ?? 1);
