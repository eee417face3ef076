// `floorflow machine export --mosquitto <dir>`: writes the machine registry as a Mosquitto
// password file and ACL file, plus the lines that load them (floorflow.conf), so machines log in
// to an external Mosquitto with the credentials `machine add` gave them and the same topic rules.
import fs from 'node:fs';
import path from 'node:path';
import { mosquittoAcl, mosquittoPasswordLine } from '../core/mosquitto';

export interface ExportedCredentials {
  username: string;
  password: string;
}

export interface MosquittoExport {
  passwordFile: string;
  aclFile: string;
  configFile: string;
  runtimeUser?: string;
}

/** The runtime's own account, from MQTT_URL's user and password when it has them. */
export function runtimeAccount(mqttUrl: string | undefined): ExportedCredentials | undefined {
  if (!mqttUrl) return undefined;
  const u = new URL(mqttUrl);
  if (!u.username || !u.password) return undefined;
  return { username: decodeURIComponent(u.username), password: decodeURIComponent(u.password) };
}

export function writeMosquittoFiles(
  dir: string,
  prefix: string,
  machines: ExportedCredentials[],
  runtime: ExportedCredentials | undefined,
): MosquittoExport {
  fs.mkdirSync(dir, { recursive: true });
  const accounts = runtime ? [...machines, runtime] : machines;
  const passwordFile = path.resolve(dir, 'passwd');
  const aclFile = path.resolve(dir, 'acl');
  const configFile = path.resolve(dir, 'floorflow.conf');
  // Written beside and renamed: a broker reloading (SIGHUP) never reads half a file.
  const write = (file: string, text: string, mode: number) => {
    fs.writeFileSync(`${file}.tmp`, text, { mode });
    fs.renameSync(`${file}.tmp`, file);
  };
  write(
    passwordFile,
    accounts.map((a) => mosquittoPasswordLine(a.username, a.password)).join('\n') + '\n',
    0o640,
  );
  write(aclFile, mosquittoAcl(prefix, runtime?.username), 0o644);
  write(
    configFile,
    [
      '# Load from mosquitto.conf (include_dir, or copy these lines) on the listener machines use.',
      'allow_anonymous false',
      `password_file ${passwordFile}`,
      `acl_file ${aclFile}`,
      '',
    ].join('\n'),
    0o644,
  );
  return { passwordFile, aclFile, configFile, runtimeUser: runtime?.username };
}
