import assert from 'node:assert/strict';
import { test } from 'node:test';

import { createRuntime, describeSettingsChange } from '../../background/runtime.js';
import { SETTINGS_KEY } from '../../shared/storage_keys.js';
import { memoryStorage } from './fixtures.js';

const TOKEN = 'a'.repeat(43);
const settingsChange = (before, after) => ({ [SETTINGS_KEY]: { oldValue: before, newValue: after } });

test('builds the settings and a client for the stored server once, after the stored health is read', async () => {
  const storage = memoryStorage({ [SETTINGS_KEY]: { serverUrl: 'http://localhost:9000/', token: TOKEN, sensitivity: 5 } });
  const steps = [];
  const runtime = createRuntime({
    storage,
    beforeBuild: async () => steps.push('health'),
    getDisplay: async () => {
      steps.push('formats');
      return { exifFormats: ['jpeg'], displayRules: ['exif-last-entry'] };
    },
  });
  const [a, b] = await Promise.all([runtime.get(), runtime.get()]);
  assert.equal(a, b, 'one build for overlapping callers');
  assert.deepEqual(steps, ['health', 'formats']);
  assert.equal(a.settings.sensitivity, 5);
  assert.equal(a.client.serverUrl, 'http://localhost:9000');
  assert.equal(await runtime.getClient(), a.client);
  assert.equal((await runtime.getSettings()).token, TOKEN);
});

test('a settings change builds afresh; another key or area keeps what was built', async () => {
  const storage = memoryStorage({ [SETTINGS_KEY]: { serverUrl: 'http://127.0.0.1:9000', token: TOKEN } });
  const runtime = createRuntime({ storage });
  const first = await runtime.get();
  assert.deepEqual(runtime.onStorageChanged({ other: { newValue: 1 } }, 'local'), { settings: false, server: false });
  assert.deepEqual(runtime.onStorageChanged(settingsChange({}, { serverUrl: 'x' }), 'session'), { settings: false, server: false });
  assert.equal(await runtime.get(), first);
  storage.data[SETTINGS_KEY] = { serverUrl: 'http://127.0.0.1:9001', token: TOKEN };
  const change = runtime.onStorageChanged(settingsChange({ serverUrl: 'http://127.0.0.1:9000' }, { serverUrl: 'http://127.0.0.1:9001' }), 'local');
  assert.deepEqual(change, { settings: true, server: true });
  const second = await runtime.get();
  assert.notEqual(second, first);
  assert.equal(second.client.serverUrl, 'http://127.0.0.1:9001');
});

test('a failed build is not kept: the next call tries again', async () => {
  const storage = memoryStorage();
  const { get } = storage;
  storage.get = async () => {
    throw new Error('storage unavailable');
  };
  const runtime = createRuntime({ storage });
  await assert.rejects(runtime.get(), /storage unavailable/);
  storage.get = get;
  assert.equal((await runtime.get()).client.serverUrl, 'http://127.0.0.1:8478', 'the default server');
});

test('only the server URL or the token names another server', () => {
  const before = { serverUrl: 'http://127.0.0.1:8478', token: TOKEN, sensitivity: 3 };
  assert.deepEqual(describeSettingsChange(settingsChange(before, { ...before, sensitivity: 4 }), 'local'), { settings: true, server: false });
  assert.deepEqual(describeSettingsChange(settingsChange(before, { ...before, token: 'b'.repeat(43) }), 'local'), { settings: true, server: true });
  assert.deepEqual(describeSettingsChange(settingsChange(undefined, before), 'local'), { settings: true, server: true }, 'the first save');
  assert.deepEqual(describeSettingsChange({}, 'local'), { settings: false, server: false });
});
