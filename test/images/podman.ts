// Runs the project's images with podman for the image tests. Image names, and the ulimits this
// machine allows, come from scripts/images/config.sh, the file scripts/images/build.sh builds from.
// When the images cannot run here, imagesUnavailable() says precisely why, for the tests to skip.
import { execFile, spawnSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..", "..");

export interface ImagesConfig {
  operatorImage: string;
  referenceImage: string;
  vllmLayerImage: string;
  sglangLayerImage: string;
  /** ~/.cache/specops/images: the build's cache, and the containers' model cache. */
  cacheDir: string;
  /** `--ulimit` flags within this machine's hard limits (podman's defaults may exceed them). */
  ulimits: string[];
}

export function imagesConfig(): ImagesConfig {
  const out = spawnSync(
    "bash",
    [
      "-c",
      // biome-ignore lint/suspicious/noTemplateCurlyInString: a bash array expansion, not a template
      'source scripts/images/config.sh && printf "%s\\n" "$OPERATOR_IMAGE" "$REFERENCE_IMAGE" "$VLLM_LAYER_IMAGE" "$SGLANG_LAYER_IMAGE" "$IMAGES_CACHE" "${PODMAN_ULIMITS[@]}"',
    ],
    { cwd: root, encoding: "utf8" },
  );
  if (out.status !== 0) throw new Error(`scripts/images/config.sh: ${out.stderr}`);
  const [
    operatorImage = "",
    referenceImage = "",
    vllmLayerImage = "",
    sglangLayerImage = "",
    cacheDir = "",
    ...ulimits
  ] = out.stdout.trim().split("\n");
  return { operatorImage, referenceImage, vllmLayerImage, sglangLayerImage, cacheDir, ulimits };
}

/** Why these images cannot run on this machine, or undefined when they can. */
export function imagesUnavailable(config: ImagesConfig, images: string[]): string | undefined {
  // build.sh records why it could not build (no root to install podman, Debian mirror unreachable).
  const why = join(config.cacheDir, "unavailable");
  const recorded = existsSync(why)
    ? `scripts/images/build.sh: ${readFileSync(why, "utf8").trim()}`
    : undefined;
  if (spawnSync("podman", ["--version"]).error)
    return recorded ?? "podman is not installed (run scripts/images/build.sh)";
  // Rootful podman: build.sh builds into root's storage, and the tests hand mounts to the images' users.
  if (process.getuid?.() !== 0)
    return "the image tests need root (rootful podman, mounts owned by the images' users)";
  const missing = images.filter((image) => spawnSync("podman", ["image", "exists", image]).status !== 0);
  if (missing.length === 0) return undefined;
  return `image ${missing.join(", ")} not built: ${recorded ?? "run scripts/images/build.sh"}`;
}

export interface Output {
  code: number;
  stdout: string;
  stderr: string;
}

export function podman(args: string[], timeoutMs = 60_000): Promise<Output> {
  return new Promise((resolve) => {
    execFile("podman", args, { timeout: timeoutMs, maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === "number" ? err.code : -1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

/** podman, failing with its stderr when it exits non-zero. */
export async function podmanOk(args: string[], timeoutMs?: number): Promise<string> {
  const out = await podman(args, timeoutMs);
  if (out.code !== 0) throw new Error(`podman ${args.join(" ")} exited ${out.code}: ${out.stderr}`);
  return out.stdout.trim();
}
