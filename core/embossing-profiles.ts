// Embosser profiles: what a machine model's protocol looks like, as data. The embosser node
// is the only code that talks to a machine, and it does so only through a profile: how a job
// becomes the machine's command, where it goes, and how the machine's answers read. A new
// embosser model is a new profile (JSON, docs/embossing.md), not a code change.
import { JsonSchema, validate } from './schema';

export type MachineJobStatus = 'accepted' | 'in_progress' | 'completed' | 'failed';
export const MACHINE_JOB_STATUSES: readonly MachineJobStatus[] = [
  'accepted',
  'in_progress',
  'completed',
  'failed',
];

export interface EmbosserProfile {
  name: string;
  description?: string;
  /** mqtt: the command goes to `topic`, answers come on the machine's event topic. http: POST to `url`, answers come as signed callbacks. */
  transport: 'mqtt' | 'http';
  command: CommandTemplate;
  /** How the machine is told to drop a job a person cancelled; a machine without one is not told. */
  cancel?: CommandTemplate;
  answer: {
    /** Field of the answer holding the job id (MQTT events; a callback names the job in its URL). */
    jobIdField: string;
    statusField: string;
    /** Field holding the machine's details, stored as machine_response. */
    responseField?: string;
    /** The machine's words for each status, e.g. {"DONE": "completed"}; unlisted words are not understood. */
    statusMap: Record<string, MachineJobStatus>;
  };
  /** The job's deadline: no answer within this time (from the command, or the machine's last accepted / in_progress) and the job needs attention. */
  timeoutMs: number;
}

export interface CommandTemplate {
  /** mqtt only; default "{prefix}/machines/{machine.id}/cmd". */
  topic?: string;
  /** http only, e.g. "{machine.settings.api_url}/jobs". */
  url?: string;
  /** http only; default POST. */
  method?: 'POST' | 'PUT';
  headers?: Record<string, string>;
  /** The command body. "{path}" alone is replaced by the value (any JSON); inside a longer string, by its text. */
  body: unknown;
}

const COMMAND_SCHEMA: JsonSchema = {
  type: 'object',
  required: ['body'],
  additionalProperties: false,
  properties: {
    topic: { type: 'string', minLength: 1 },
    url: { type: 'string', minLength: 1 },
    method: { enum: ['POST', 'PUT'] },
    headers: { type: 'object', additionalProperties: { type: 'string' } },
    body: {},
  },
};

export const PROFILE_SCHEMA: JsonSchema = {
  type: 'object',
  required: ['name', 'transport', 'command', 'answer', 'timeoutMs'],
  additionalProperties: false,
  properties: {
    name: { type: 'string', pattern: '^[A-Za-z0-9_.-]{1,64}$' },
    description: { type: 'string' },
    transport: { enum: ['mqtt', 'http'] },
    command: COMMAND_SCHEMA,
    cancel: COMMAND_SCHEMA,
    answer: {
      type: 'object',
      required: ['jobIdField', 'statusField', 'statusMap'],
      additionalProperties: false,
      properties: {
        jobIdField: { type: 'string', minLength: 1 },
        statusField: { type: 'string', minLength: 1 },
        responseField: { type: 'string', minLength: 1 },
        statusMap: {
          type: 'object',
          additionalProperties: { enum: [...MACHINE_JOB_STATUSES] },
          minProperties: 1,
        },
      },
    },
    timeoutMs: { type: 'integer', minimum: 1 },
  },
  if: { properties: { transport: { const: 'http' } } },
  then: {
    properties: { command: { required: ['url', 'body'] }, cancel: { required: ['url', 'body'] } },
  },
};

/** floorflow's own MQTT protocol: {"type":"emboss","job_id",...} on <p>/machines/<id>/cmd, events on /event. */
export const MQTT_JSON_PROFILE: EmbosserProfile = {
  name: 'mqtt-json',
  description: 'floorflow MQTT JSON: cmd and event topics of the machine',
  transport: 'mqtt',
  command: {
    topic: '{prefix}/machines/{machine.id}/cmd',
    body: { type: 'emboss', job_id: '{job.id}', attempt: '{job.attempts}', plates: '{plates}' },
  },
  cancel: {
    topic: '{prefix}/machines/{machine.id}/cmd',
    body: { type: 'cancel', job_id: '{job.id}', attempt: '{job.attempts}' },
  },
  answer: {
    jobIdField: 'job_id',
    statusField: 'status',
    responseField: 'response',
    statusMap: { accepted: 'accepted', in_progress: 'in_progress', completed: 'completed', failed: 'failed' },
  },
  timeoutMs: 120000,
};

/** A machine with an HTTP API: the job is POSTed to it; it reports with the signed callback (docs/embossing.md). */
export const HTTP_PROFILE: EmbosserProfile = {
  name: 'http',
  description:
    'HTTP API: POST {machine.settings.api_url}/jobs, signed callback to /api/embossing-jobs/callback/:job_id',
  transport: 'http',
  command: {
    url: '{machine.settings.api_url}/jobs',
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    // The machine sends `attempt` back in its callback: an answer to an older attempt changes nothing.
    body: {
      type: 'emboss',
      job_id: '{job.id}',
      attempt: '{job.attempts}',
      plates: '{plates}',
      callback_path: '{callback_path}',
    },
  },
  cancel: {
    url: '{machine.settings.api_url}/jobs/{job.id}/cancel',
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: { type: 'cancel', job_id: '{job.id}', attempt: '{job.attempts}' },
  },
  answer: {
    jobIdField: 'job_id',
    statusField: 'status',
    responseField: 'response',
    statusMap: { accepted: 'accepted', in_progress: 'in_progress', completed: 'completed', failed: 'failed' },
  },
  timeoutMs: 600000,
};

export const SHIPPED_PROFILES: readonly EmbosserProfile[] = [MQTT_JSON_PROFILE, HTTP_PROFILE];

/** Checks profiles given as JSON (one object or an array); returns them or the reason they are unusable. */
export function parseProfiles(json: string | unknown): { profiles: EmbosserProfile[] } | { error: string } {
  let value: unknown = json;
  if (typeof json === 'string') {
    if (json.trim() === '') return { profiles: [] };
    try {
      value = JSON.parse(json);
    } catch (err) {
      return { error: `profiles are not JSON: ${(err as Error).message}` };
    }
  }
  const list = Array.isArray(value) ? value : [value];
  const profiles: EmbosserProfile[] = [];
  for (const [i, candidate] of list.entries()) {
    const result = validate<EmbosserProfile>(PROFILE_SCHEMA, candidate);
    if (!result.ok) return { error: `profile ${i + 1}: ${result.error}` };
    profiles.push(result.value!);
  }
  return { profiles };
}

/** What a template may name: {job.id}, {plates}, {plate_numbers}, {machine.id}, {machine.settings.x}, {prefix}, {callback_path}. */
export interface CommandContext {
  prefix: string;
  job: { id: string; machine_id: string; attempts: number; created_by: string | null };
  plates: Array<{ id: string; plate_number: string; batch_code: string | null }>;
  machine: { id: string; settings: Record<string, unknown> };
  callback_path: string;
}

function lookup(context: unknown, path: string): unknown {
  let value: unknown = context;
  for (const part of path.split('.')) {
    if (typeof value !== 'object' || value === null) return undefined;
    value = (value as Record<string, unknown>)[part];
  }
  return value;
}

const WHOLE = /^\{([A-Za-z0-9_.]+)\}$/;
const INSIDE = /\{([A-Za-z0-9_.]+)\}/g;

/** Fills a template (profile body, topic, url, headers) from the context. Unknown paths are errors. */
export function render(template: unknown, context: CommandContext): unknown {
  const missing: string[] = [];
  const fill = (value: unknown): unknown => {
    if (typeof value === 'string') {
      const whole = WHOLE.exec(value);
      if (whole) {
        const found = lookup(context, whole[1]);
        if (found === undefined) missing.push(whole[1]);
        return found;
      }
      return value.replace(INSIDE, (_m, path: string) => {
        const found = lookup(context, path);
        if (found === undefined) missing.push(path);
        return found === undefined ? '' : typeof found === 'object' ? JSON.stringify(found) : String(found);
      });
    }
    if (Array.isArray(value)) return value.map(fill);
    if (typeof value === 'object' && value !== null) {
      return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, fill(v)]));
    }
    return value;
  };
  const result = fill(template);
  if (missing.length > 0)
    throw new Error(`the profile names ${[...new Set(missing)].join(', ')}, which this job does not have`);
  return result;
}

/** The machine's command for one job: where it goes and what it says. */
export interface MachineCommand {
  transport: 'mqtt' | 'http';
  /** mqtt: the topic; http: the URL. */
  target: string;
  method?: 'POST' | 'PUT';
  headers?: Record<string, string>;
  body: Record<string, unknown> | unknown[] | string | number | boolean | null;
}

/** The machine's command for one job (`template` defaults to the emboss command; the cancel command is `profile.cancel`). */
export function commandFor(
  profile: EmbosserProfile,
  context: CommandContext,
  template: CommandTemplate = profile.command,
): MachineCommand {
  const body = render(template.body, context) as MachineCommand['body'];
  if (profile.transport === 'mqtt') {
    const topic = String(render(template.topic ?? '{prefix}/machines/{machine.id}/cmd', context));
    return { transport: 'mqtt', target: topic, body };
  }
  const url = String(render(template.url ?? '', context));
  const headers = render(template.headers ?? {}, context) as Record<string, string>;
  return { transport: 'http', target: url, method: template.method ?? 'POST', headers, body };
}

/** Fields where machines put the words of a failure, most telling first. */
const REASON_FIELDS = ['error', 'reason', 'message', 'detail', 'description'];

/**
 * A machine-reported failure in plain words for the floor: "EMB-1 reported a failure: die
 * misaligned", from the first reason field of its response, else a short excerpt of it.
 */
export function failureReason(machineId: string, response: Record<string, unknown> | undefined): string {
  const said = REASON_FIELDS.map((f) => response?.[f]).find(
    (v): v is string => typeof v === 'string' && v.trim() !== '',
  );
  if (said) return `${machineId} reported a failure: ${said.trim().slice(0, 300)}`;
  const rest = response && Object.keys(response).length > 0 ? JSON.stringify(response).slice(0, 200) : '';
  return rest
    ? `${machineId} reported a failure (${rest})`
    : `${machineId} reported a failure without a reason`;
}

export type MachineAnswer =
  | { ok: true; jobId: string; status: MachineJobStatus; response?: Record<string, unknown> }
  | { ok: false; reason: string; jobId?: string };

/**
 * Reads a machine's answer through its profile. `jobId` comes from the URL for callbacks;
 * MQTT events carry it in the profile's job id field.
 */
export function readAnswer(profile: EmbosserProfile, payload: unknown, jobId?: string): MachineAnswer {
  if (typeof payload !== 'object' || payload === null || Array.isArray(payload)) {
    return { ok: false, reason: 'the answer is not a JSON object', jobId };
  }
  const body = payload as Record<string, unknown>;
  const named = body[profile.answer.jobIdField];
  const id = jobId ?? (typeof named === 'number' || typeof named === 'string' ? String(named) : undefined);
  if (id === undefined || !/^[0-9]{1,18}$/.test(id)) {
    return { ok: false, reason: `${profile.answer.jobIdField} is missing or not a job id` };
  }
  if (jobId !== undefined && named !== undefined && String(named) !== jobId) {
    return {
      ok: false,
      reason: `${profile.answer.jobIdField} ${String(named)} is not the job of the URL`,
      jobId,
    };
  }
  const word = body[profile.answer.statusField];
  const status = typeof word === 'string' ? profile.answer.statusMap[word] : undefined;
  if (!status)
    return {
      ok: false,
      reason: `${profile.answer.statusField} ${JSON.stringify(word)} is not understood`,
      jobId: id,
    };
  const rawResponse = profile.answer.responseField ? body[profile.answer.responseField] : undefined;
  const response =
    typeof rawResponse === 'object' && rawResponse !== null && !Array.isArray(rawResponse)
      ? (rawResponse as Record<string, unknown>)
      : rawResponse === undefined
        ? undefined
        : { value: rawResponse };
  return { ok: true, jobId: id, status, response };
}
