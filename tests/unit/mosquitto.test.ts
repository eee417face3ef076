import assert from 'node:assert/strict';
import { mosquittoAcl, mosquittoPasswordLine } from '../../core/mosquitto';

describe('Mosquitto files from the machine registry (core/mosquitto)', () => {
  it('writes the password line mosquitto_passwd 2.0 writes for the same password and salt', () => {
    // `mosquitto_passwd -c -b pwtest alice s3cret` (Mosquitto 2.0.11) wrote this line.
    const written =
      'alice:$7$101$l9PVDNHOXGy/njvE$SoNwSrFMh1UEiD46RA/GeW3Dbll9gH58esxWDXUzZca+fNTYmyjw5Z9SHt3F7yRzw47A8tY/zJ9K0aaajGfssw==';
    assert.equal(
      mosquittoPasswordLine('alice', 's3cret', Buffer.from('l9PVDNHOXGy/njvE', 'base64')),
      written,
    );
  });

  it('refuses a user name that would break the file', () => {
    assert.throws(() => mosquittoPasswordLine('a:b', 'x'), /cannot be in a password file/);
  });

  it('lets a machine publish its scan, status and event topics and read only its cmd; the runtime reads and writes all', () => {
    const acl = mosquittoAcl('plant', 'ff-runtime');
    assert.match(acl, /^pattern write plant\/machines\/%u\/scan$/m);
    assert.match(acl, /^pattern read plant\/machines\/%u\/cmd$/m);
    assert.doesNotMatch(acl, /pattern (write|readwrite) plant\/machines\/%u\/cmd/);
    assert.match(acl, /^user ff-runtime\ntopic readwrite plant\/#$/m);
  });
});
