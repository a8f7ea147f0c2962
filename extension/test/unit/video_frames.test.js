import assert from 'node:assert/strict';
import { test } from 'node:test';

import { VIDEO_BOUNDS, listCaptureTimes } from '../../content/video_frames.js';

test('frames are captured near the start, in the middle and near the end, inside the video', () => {
  assert.equal(VIDEO_BOUNDS.frames, 3);
  assert.deepEqual(listCaptureTimes(6), [1, 3, 5]);
  for (const t of listCaptureTimes(0.9)) assert.ok(t >= 0 && t < 0.9, t);
  assert.deepEqual(listCaptureTimes(0.2), [0]);
  assert.deepEqual(listCaptureTimes(NaN), [0]);
});
