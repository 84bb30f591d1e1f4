// The SpecServe controller's status write: server-side apply of exactly the fields it owns, on
// change. The autoscaler's fields (status.autoscaling, status.decisions, its conditions) are left
// out, so that neither controller ever writes back the other's older values.

import { updateStatus } from "../../lib/apply.ts";
import type { Client } from "../../lib/client.ts";
import { withoutAutoscalerFields } from "../autoscaler/status.ts";
import { FIELD_MANAGER, SpecServes, type SpecServeWire } from "./controller.ts";
import type { SpecServeStatus } from "./observe.ts";

export function updateSpecServeStatus(
  client: Client,
  current: SpecServeWire,
  status: SpecServeStatus,
): Promise<SpecServeWire | undefined> {
  return updateStatus(
    client,
    SpecServes,
    { ...current, status: withoutAutoscalerFields(current.status) },
    withoutAutoscalerFields(status),
    { fieldManager: FIELD_MANAGER },
  );
}
