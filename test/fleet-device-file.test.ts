// Issue 15: `dps-mqtt fleet --devices FILE`: CSV with a header row or JSON Lines, one device a row,
// errors that name the line.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { parseDeviceFile } from '../src/fleet/device-file.js';

const KEY = Buffer.alloc(32, 1).toString('base64');

describe('device files', () => {
  test('CSV: header names the columns (any common spelling), quoted cells, CRLF, blank lines skipped', () => {
    const text = `registration_id,symmetricKey\r\ndev-1,${KEY}\r\n"dev-2",\r\n\r\ndev-3,"${KEY}"\r\n`;
    assert.deepEqual(parseDeviceFile(text, 'devices.csv'), [
      { registrationId: 'dev-1', symmetricKey: KEY },
      { registrationId: 'dev-2' },
      { registrationId: 'dev-3', symmetricKey: KEY },
    ]);
  });

  test('CSV: certificate and key paths', () => {
    assert.deepEqual(parseDeviceFile('registrationId,certificate,privateKey\ncam-1,cam-1.pem,cam-1.key\n'), [
      { registrationId: 'cam-1', certificate: 'cam-1.pem', privateKey: 'cam-1.key' },
    ]);
  });

  test('JSON Lines: one object a line, with a payload', () => {
    const text = `{"registrationId":"dev-1","symmetricKey":"${KEY}"}\n\n{"registrationId":"dev-2","payload":{"line":3}}\n`;
    assert.deepEqual(parseDeviceFile(text), [
      { registrationId: 'dev-1', symmetricKey: KEY },
      { registrationId: 'dev-2', payload: { line: 3 } },
    ]);
  });

  test('mistakes name the file and the line', () => {
    const cases: Array<[string, RegExp]> = [
      ['registrationId,colour\ndev-1,red\n', /devices.csv line 1: unknown column "colour"/],
      ['symmetricKey\nabc\n', /devices.csv line 1: the header has no registrationId column/],
      ['registrationId,symmetricKey\ndev-1\n', /devices.csv line 2: 1 cells, but the header has 2/],
      ['registrationId\n"dev-1\n', /devices.csv line 2: a quoted cell is not closed/],
      ['{"registrationId":"a"}\n{"registrationId":\n', /devices.csv line 2: not JSON/],
      ['{"registrationId":"a","colour":"red"}\n', /devices.csv line 1: unknown field "colour"/],
      ['{"symmetricKey":"x"}\n', /devices.csv line 1: registrationId is missing/],
    ];
    for (const [text, expected] of cases)
      assert.throws(() => parseDeviceFile(text, 'devices.csv'), expected, text);
  });
});
