import assert from 'node:assert/strict';
import {
  CommandContext,
  HTTP_PROFILE,
  MQTT_JSON_PROFILE,
  commandFor,
  failureReason,
  parseProfiles,
  readAnswer,
} from '../../core/embossing-profiles';

const context: CommandContext = {
  prefix: 'floorflow',
  job: { id: '42', machine_id: 'EMB-1', attempts: 1, created_by: 'ana' },
  plates: [
    { id: '7', plate_number: 'AB-101', batch_code: 'B-7' },
    { id: '8', plate_number: 'AB-101', batch_code: 'B-7' },
  ],
  machine: { id: 'EMB-1', settings: { api_url: 'http://emb-1.plant.local:8080' } },
  callback_path: '/api/embossing-jobs/callback/42',
};

/** A press-maker's model with its own words: one JSON profile, no code. */
const acmeProfile = {
  name: 'acme-ep200',
  transport: 'mqtt',
  command: {
    topic: '{prefix}/machines/{machine.id}/cmd',
    body: { type: 'emboss', job_id: '{job.id}', op: 'EMBOSS', text: 'plates {job.id} for {job.created_by}' },
  },
  answer: {
    jobIdField: 'order',
    statusField: 'state',
    responseField: 'detail',
    statusMap: { ACK: 'accepted', RUN: 'in_progress', DONE: 'completed', ERR: 'failed' },
  },
  timeoutMs: 90000,
};

describe('embosser profiles', () => {
  it('mqtt-json sends {"type":"emboss","job_id",...} with the plates on the machine cmd topic', () => {
    const command = commandFor(MQTT_JSON_PROFILE, context);
    assert.equal(command.transport, 'mqtt');
    assert.equal(command.target, 'floorflow/machines/EMB-1/cmd');
    assert.deepEqual(command.body, {
      type: 'emboss',
      job_id: '42',
      attempt: context.job.attempts,
      plates: context.plates,
    });
  });

  it('the shipped profiles have a cancel command naming the job; a profile without one has none', () => {
    const mqttCancel = commandFor(MQTT_JSON_PROFILE, context, MQTT_JSON_PROFILE.cancel);
    assert.equal(mqttCancel.target, 'floorflow/machines/EMB-1/cmd');
    assert.deepEqual(mqttCancel.body, { type: 'cancel', job_id: '42', attempt: context.job.attempts });
    const httpCancel = commandFor(HTTP_PROFILE, context, HTTP_PROFILE.cancel);
    assert.equal(httpCancel.target, 'http://emb-1.plant.local:8080/jobs/42/cancel');
    const parsed = parseProfiles(JSON.stringify(acmeProfile));
    assert.ok('profiles' in parsed && parsed.profiles[0].cancel === undefined);
  });

  it("a machine's failure reads in plain words: its reason field, else a short excerpt", () => {
    assert.equal(
      failureReason('EMB-1', { error: 'die misaligned', attempt: 4 }),
      'EMB-1 reported a failure: die misaligned',
    );
    assert.equal(
      failureReason('EMB-2', { message: ' out of foil ' }),
      'EMB-2 reported a failure: out of foil',
    );
    assert.equal(failureReason('EMB-3', { code: 17 }), 'EMB-3 reported a failure ({"code":17})');
    assert.equal(failureReason('EMB-4', undefined), 'EMB-4 reported a failure without a reason');
  });

  it('http POSTs to the machine API URL from the machine settings, naming the callback path', () => {
    const command = commandFor(HTTP_PROFILE, context);
    assert.equal(command.target, 'http://emb-1.plant.local:8080/jobs');
    assert.equal(command.method, 'POST');
    assert.equal(
      (command.body as { callback_path: string }).callback_path,
      '/api/embossing-jobs/callback/42',
    );
  });

  it('a profile naming something the job lacks is an error, not a half-filled command', () => {
    const broken = { ...MQTT_JSON_PROFILE, command: { body: { x: '{job.nothing}' } } };
    assert.throws(() => commandFor(broken, context), /job\.nothing/);
  });

  it('reads the machine events of docs/machines.md', () => {
    assert.deepEqual(
      readAnswer(MQTT_JSON_PROFILE, { job_id: 42, status: 'completed', response: { ok: 1 } }),
      {
        ok: true,
        jobId: '42',
        status: 'completed',
        response: { ok: 1 },
      },
    );
    assert.equal(readAnswer(MQTT_JSON_PROFILE, { job_id: '42', status: 'exploded' }).ok, false);
    assert.equal(readAnswer(MQTT_JSON_PROFILE, { status: 'completed' }).ok, false);
    assert.equal(readAnswer(MQTT_JSON_PROFILE, 'completed').ok, false);
  });

  it('a callback names its job in the URL; a body naming another job is refused', () => {
    assert.equal(readAnswer(HTTP_PROFILE, { status: 'failed' }, '42').ok, true);
    assert.equal(readAnswer(HTTP_PROFILE, { job_id: '43', status: 'completed' }, '42').ok, false);
  });

  it('a new machine model is one JSON profile with its own words', () => {
    const parsed = parseProfiles(JSON.stringify([acmeProfile]));
    assert.ok('profiles' in parsed, JSON.stringify(parsed));
    const [acme] = parsed.profiles;
    assert.deepEqual(commandFor(acme, context).body, {
      type: 'emboss',
      job_id: '42',
      op: 'EMBOSS',
      text: 'plates 42 for ana',
    });
    assert.deepEqual(readAnswer(acme, { order: '42', state: 'DONE', detail: { die: 3 } }), {
      ok: true,
      jobId: '42',
      status: 'completed',
      response: { die: 3 },
    });
  });

  it('rejects profiles that cannot work, saying why', () => {
    assert.match(String((parseProfiles('{') as { error: string }).error), /not JSON/);
    const noUrl = { ...acmeProfile, transport: 'http' };
    assert.match(String((parseProfiles([noUrl]) as { error: string }).error), /url/);
    const badStatus = { ...acmeProfile, answer: { ...acmeProfile.answer, statusMap: { OK: 'great' } } };
    assert.ok('error' in parseProfiles([badStatus]));
    assert.deepEqual(parseProfiles(''), { profiles: [] });
  });
});
