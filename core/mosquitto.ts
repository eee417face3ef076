// The machine registry as Mosquitto 2 files: its password file format ($7$: PBKDF2-SHA512, as
// mosquitto_passwd writes it) and an ACL file with the topic rules of docs/machines.md that the
// embedded broker enforces (core/topics.ts), for plants that run floorflow behind Mosquitto.
import crypto from 'node:crypto';

/** mosquitto_passwd's defaults (Mosquitto 2.0): 101 iterations, 12 bytes of salt, a 64-byte hash. */
export const MOSQUITTO_ITERATIONS = 101;
export const MOSQUITTO_SALT_BYTES = 12;

/** One line of a Mosquitto password file: `<user>:$7$<iterations>$<salt>$<hash>` (base64). */
export function mosquittoPasswordLine(
  username: string,
  password: string,
  salt: Buffer = crypto.randomBytes(MOSQUITTO_SALT_BYTES),
  iterations = MOSQUITTO_ITERATIONS,
): string {
  if (/[:\n\r]/.test(username))
    throw new Error(`user name ${JSON.stringify(username)} cannot be in a password file`);
  const hash = crypto.pbkdf2Sync(password, salt, iterations, 64, 'sha512');
  return `${username}:$7$${iterations}$${salt.toString('base64')}$${hash.toString('base64')}`;
}

/** Topics under a machine's own prefix that floorflow reads from it (docs/machines.md). */
const MACHINE_PUBLISHES = ['scan', 'status', 'event'];

/**
 * The ACL file. Mosquitto substitutes %u with the user name, which is the machine id: a machine
 * publishes only under <p>/machines/<its id>/ (scan, status, event; never cmd) and subscribes
 * only to its own cmd. The runtime's account (the user in MQTT_URL) reads and writes all of <p>/.
 */
export function mosquittoAcl(prefix: string, runtimeUser?: string): string {
  const lines = [
    '# Written by `floorflow machine export --mosquitto`: the topic rules of the embedded broker.',
    '# Machines: publish only under their own topics (not cmd), subscribe only to their own cmd.',
  ];
  for (const kind of MACHINE_PUBLISHES) {
    lines.push(
      `pattern write ${prefix}/machines/%u/${kind}`,
      `pattern write ${prefix}/machines/%u/${kind}/#`,
    );
  }
  lines.push(`pattern read ${prefix}/machines/%u/cmd`, `pattern read ${prefix}/machines/%u/cmd/#`);
  if (runtimeUser) {
    lines.push('', '# The floorflow runtimes (the user of MQTT_URL): every machine topic.');
    lines.push(`user ${runtimeUser}`, `topic readwrite ${prefix}/#`);
  }
  return lines.join('\n') + '\n';
}
