// Copies to an object store, shared by the kinds that publish a product to spec.output (a
// DraftTraining's checkpoint, an AcceptanceEval's result JSON): which outputs are copied, the runtime
// task's `publish` section, status.output from the runtime's verified copy, and the runtime's field
// names put in the user's terms. Pure.
import type { OutputLocation } from "../../api/common.ts";
import type { TaskInput } from "../../contract/task.ts";
import { dropUndefined } from "../../lib/objects.ts";
import type { Termination } from "../drafttraining/observe.ts";

/** Whether an output is copied to an object store (a pvc:// output is written in place). */
export const isObjectStoreOutput = (output: OutputLocation | undefined): output is OutputLocation =>
  /^(s3|gs):\/\//.test(output?.uri ?? "");

/**
 * The runtime task's `publish`: the location and how to reach the store. Credentials are not part
 * of it: they reach the pod as env from credentialsSecretRef, or from the pod's cloud identity.
 */
export function publishTarget(output: OutputLocation): NonNullable<TaskInput["publish"]> {
  return dropUndefined({
    uri: output.uri,
    endpoint: output.endpoint,
    region: output.region,
    pathStyle: output.pathStyle,
  }) as NonNullable<TaskInput["publish"]>;
}

export interface PublishedOutput {
  uri: string;
  files?: number;
  sizeBytes?: number;
  checksum?: string;
  completionTime?: string;
}

/** status.output from a runtime result's outputs.published: where the copy is, its size and checksum. */
export function publishedOutput(
  termination: Termination | undefined,
  completionTime: string | undefined,
): PublishedOutput | undefined {
  const published = termination?.result?.outputs?.published;
  if (!published) return undefined;
  return dropUndefined({
    uri: published.uri,
    files: published.files,
    sizeBytes: published.sizeBytes,
    checksum: published.checksum,
    completionTime,
  });
}

/**
 * The runtime names the task's fields (publish.uri, params.target.uri, ...); the user wrote the
 * spec's. `fields` maps task field paths to the spec fields they came from (publish.uri is always
 * spec.output.uri); a path matches whole segments only, so params.target never matches
 * params.targetCache.
 */
export function inSpecTerms(
  message: string | undefined,
  fields: Readonly<Record<string, string>> = {},
): string | undefined {
  if (message === undefined) return undefined;
  const all: [string, string][] = [["publish.uri", "spec.output.uri"], ...Object.entries(fields)];
  return all.reduce(
    (text, [task, spec]) =>
      text.replace(new RegExp(`(?<![\\w.])${task.replace(/[.[\]]/g, "\\$&")}(?!\\w)`, "g"), spec),
    message,
  );
}
