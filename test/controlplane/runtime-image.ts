// Whether the runtime's reference image carries this checkout's runtime: scripts/images/build.sh
// labels it with a digest of the sources its reference target copies (runtime-source-hash.sh), so
// pods on the real node run the code under test, not an older copy. A stale image is rebuilt (its
// last layers: seconds when only code changed).
import { execFileSync, spawnSync } from "node:child_process";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "../..");
export const RUNTIME_SOURCE_LABEL = "dev.specops.runtime-source";

/** Why the image's runtime is not this checkout's, or undefined when it is. */
export function staleRuntimeImage(image: string): string | undefined {
  const label = execFileSync(
    "podman",
    ["image", "inspect", "--format", `{{index .Labels "${RUNTIME_SOURCE_LABEL}"}}`, image],
    { encoding: "utf8" },
  ).trim();
  const here = execFileSync("bash", [join(root, "scripts/images/runtime-source-hash.sh")], {
    encoding: "utf8",
  }).trim();
  if (label === here) return undefined;
  return label && label !== "<no value>"
    ? `${image} was built from other runtime sources than this checkout's`
    : `${image} carries no source label (built before scripts/images/build.sh labelled it)`;
}

/**
 * Rebuilds the reference image when it is stale (scripts/images/build.sh reference); returns why it
 * still is not this checkout's, or undefined when it is.
 */
export function referenceImageFromCheckout(image: string, log: (line: string) => void): string | undefined {
  const stale = staleRuntimeImage(image);
  if (!stale) return undefined;
  log(`${stale}: rebuilding its last layers (scripts/images/build.sh reference)`);
  const built = spawnSync("bash", [join(root, "scripts/images/build.sh"), "reference"], {
    stdio: ["ignore", "ignore", "inherit"],
  });
  if (built.status !== 0 || staleRuntimeImage(image))
    return `${image} could not be rebuilt from this checkout (scripts/images/build.sh reference)`;
  return undefined;
}
