// Which engraver takes a job and how long it engraves, as pure rules: which engraver should
// take a job (it can engrave the item, it is free soonest, it is fastest for this job) and how
// long the job is expected to take there. The store gathers the facts; this decides.

/** What an engraver's registry settings (floorflow.machines.settings) say about it. */
export interface EngraverSettings {
  /** What the engraver can do, e.g. ["laser", "rotary"]; an item names what it needs. */
  capabilities: string[];
  /** Seconds to set the item up before the first line. */
  setupSeconds: number;
  /** Seconds per line of text. */
  secondsPerLine: number;
  /** Extra seconds for a job with artwork (a logo takes longer than a line). */
  artworkSeconds: number;
  /** The engraver understands `{"type": "cancel", "job_id"}` on its cmd topic. */
  cancelCommand: boolean;
}

export const DEFAULT_ENGRAVER_SETTINGS: EngraverSettings = {
  capabilities: [],
  setupSeconds: 60,
  secondsPerLine: 90,
  artworkSeconds: 300,
  cancelCommand: false,
};

function positiveNumber(value: unknown, fallback: number): number {
  return typeof value === 'number' && Number.isFinite(value) && value >= 0 ? value : fallback;
}

/**
 * Reads the engraver keys of a machine's settings (snake_case, as `floorflow machine` stores
 * them): capabilities, setup_seconds, seconds_per_line, artwork_seconds, cancel_command.
 * Anything missing or malformed takes the default, so a machine registered without settings
 * is an engraver that can do the plain jobs.
 */
export function engraverSettingsOf(settings: unknown): EngraverSettings {
  const s = settings && typeof settings === 'object' ? (settings as Record<string, unknown>) : {};
  const capabilities = Array.isArray(s.capabilities)
    ? s.capabilities.filter((c): c is string => typeof c === 'string' && c.length > 0)
    : DEFAULT_ENGRAVER_SETTINGS.capabilities;
  return {
    capabilities,
    setupSeconds: positiveNumber(s.setup_seconds, DEFAULT_ENGRAVER_SETTINGS.setupSeconds),
    secondsPerLine: positiveNumber(s.seconds_per_line, DEFAULT_ENGRAVER_SETTINGS.secondsPerLine),
    artworkSeconds: positiveNumber(s.artwork_seconds, DEFAULT_ENGRAVER_SETTINGS.artworkSeconds),
    cancelCommand: s.cancel_command === true,
  };
}

/** The job as the choice sees it. */
export interface JobToPlace {
  lines: number;
  hasArtwork: boolean;
  /** What the item needs (engraving.items.engraving_area.requires), e.g. ["rotary"]. */
  requires: readonly string[];
  /** The engraver that last failed this job, avoided while another can take it. */
  lastFailedMachine?: string | null;
}

export interface EngraverCandidate {
  machineId: string;
  settings: EngraverSettings;
  /** Jobs on the engraver now (sent and not finished). */
  queueLength: number;
  /** Seconds until the engraver is expected to be free (0 when it holds no job). */
  busyForSeconds: number;
}

/** calculateEngraveTime: setup, then each line, plus the artwork. At least one line. */
export function estimateEngraveSeconds(
  job: Pick<JobToPlace, 'lines' | 'hasArtwork'>,
  s: EngraverSettings,
): number {
  const seconds =
    s.setupSeconds + s.secondsPerLine * Math.max(1, job.lines) + (job.hasArtwork ? s.artworkSeconds : 0);
  return Math.round(seconds);
}

export function canEngrave(job: Pick<JobToPlace, 'requires'>, s: EngraverSettings): boolean {
  return job.requires.every((need) => s.capabilities.includes(need));
}

export interface EngraverChoice {
  machineId: string;
  estimatedSeconds: number;
  /** Seconds from now until the job is expected to be done on this engraver. */
  finishInSeconds: number;
}

/**
 * selectBestMachine: among the engravers that can engrave the item, the one that finishes the
 * job soonest (time until it is free plus its estimate for this job); ties go to the shorter
 * queue, then the machine id, so the choice is stable. The engraver that last failed the job
 * is chosen only when no other can take it. Undefined when none can.
 */
export function chooseEngraver(
  job: JobToPlace,
  candidates: readonly EngraverCandidate[],
): EngraverChoice | undefined {
  const capable = candidates.filter((c) => canEngrave(job, c.settings));
  const others = capable.filter((c) => c.machineId !== job.lastFailedMachine);
  const pool = others.length > 0 ? others : capable;
  let best: (EngraverChoice & { queueLength: number }) | undefined;
  for (const c of pool) {
    const estimatedSeconds = estimateEngraveSeconds(job, c.settings);
    const option = {
      machineId: c.machineId,
      estimatedSeconds,
      finishInSeconds: Math.max(0, c.busyForSeconds) + estimatedSeconds,
      queueLength: c.queueLength,
    };
    if (
      !best ||
      option.finishInSeconds < best.finishInSeconds ||
      (option.finishInSeconds === best.finishInSeconds &&
        (option.queueLength < best.queueLength ||
          (option.queueLength === best.queueLength && option.machineId < best.machineId)))
    )
      best = option;
  }
  if (!best) return undefined;
  return {
    machineId: best.machineId,
    estimatedSeconds: best.estimatedSeconds,
    finishInSeconds: best.finishInSeconds,
  };
}
