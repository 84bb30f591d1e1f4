// What a SpecServe's fleet costs, integrated decision by decision: GPU-hours held (every replica
// asked for, pods still starting included, as the fleet simulator counts them) and the tokens they
// generated. Pure: the clock in, the increments and the next clock out.

export interface CostClock {
  /** Unix seconds of the last accrual. */
  timeSeconds: number;
  /** GPUs held from then on: spec.replicas after that decision x GPUs per replica. */
  gpus: number;
}

export interface CostAccrual {
  clock: CostClock;
  /** GPU-hours held since the last accrual. */
  gpuHours: number;
  /** Tokens generated since the last accrual (the measured rate over the elapsed time). */
  generatedTokens: number;
  /** Generated tokens per GPU-hour over the elapsed time; null without a rate or without GPUs. */
  tokensPerGpuHour: number | null;
}

/** GPUs one replica holds: GPUs per node of the replica x its nodes. */
export const gpusOfReplica = (gpusPerReplica: number, nodesPerReplica = 1): number =>
  gpusPerReplica * nodesPerReplica;

/**
 * Accrues from the last clock to now. The GPUs held over the interval are those asked for at its
 * start (a scale written now costs from now on); the first call only starts the clock.
 */
export function accrueCost(
  prev: CostClock | undefined,
  nowSeconds: number,
  gpusFromNow: number,
  generationTokensPerSecond: number | null,
): CostAccrual {
  const clock = { timeSeconds: nowSeconds, gpus: gpusFromNow };
  if (!prev) return { clock, gpuHours: 0, generatedTokens: 0, tokensPerGpuHour: null };
  const elapsed = Math.max(0, nowSeconds - prev.timeSeconds);
  const gpuHours = (prev.gpus * elapsed) / 3600;
  const rate = generationTokensPerSecond ?? null;
  const generatedTokens = rate === null || !(rate > 0) ? 0 : rate * elapsed;
  const tokensPerGpuHour = rate === null || prev.gpus <= 0 ? null : (Math.max(0, rate) * 3600) / prev.gpus;
  return { clock, gpuHours, generatedTokens, tokensPerGpuHour };
}
