/**
 * Frames of a <video>, captured in the page: the "GIFs" of X, Reddit, Imgur, 9GAG, Tumblr,
 * Discord and Mastodon are short MP4/WebM videos. A hidden copy of the video (same source, muted,
 * never in the document) is seeked to a few moments and drawn on a canvas, so the page's own
 * player is never moved; a video streamed through Media Source Extensions (a `blob:` source that
 * cannot be opened twice) gives the frame its own element shows. Each frame becomes a JPEG the
 * worker classifies like a picture. A cross-origin video without CORS taints the canvas: its
 * frames cannot be read here, and the caller sends its URL to the worker instead (the server
 * decodes video bodies, docs/api.md "Videos").
 */
import { MAX_PAGE_BYTES } from '../shared/messages.js';

export const VIDEO_BOUNDS = Object.freeze({
  frames: 3, // frames captured per video: near the start, the middle, near the end
  side: 640, // px: frames are scaled down to this longest side (the server looks at 224-336 px)
  seconds: 180, // a longer (or live) video is not a meme: its poster alone is checked
  timeoutMs: 8000, // the whole capture
});

/** Why frames could not be captured (the caller then asks the worker by URL). */
export const NO_FRAMES = Object.freeze({
  TAINTED: 'tainted', // cross-origin without CORS
  NO_DATA: 'no_data', // nothing decodable in time
  TOO_LONG: 'too_long', // longer than VIDEO_BOUNDS.seconds, or live
});

/** The URL the video plays, or would play (its first <source>), or ''. */
export function readVideoSource(video) {
  if (video.currentSrc) return video.currentSrc;
  if (video.getAttribute('src')) return video.src;
  const source = video.querySelector('source[src]');
  return source ? source.src : '';
}

/**
 * Up to VIDEO_BOUNDS.frames frames of `video` as [{base64, mime}], or {reason} from NO_FRAMES.
 * Never seeks or plays the page's own element.
 */
export async function captureFrames(video) {
  const src = readVideoSource(video);
  if (!src) return { reason: NO_FRAMES.NO_DATA };
  const deadline = Date.now() + VIDEO_BOUNDS.timeoutMs;
  if (/^blob:/i.test(src)) return captureShownFrame(video); // Media Source: cannot be opened twice
  const copy = document.createElement('video');
  copy.muted = true;
  copy.preload = 'auto';
  if (video.crossOrigin !== null) copy.crossOrigin = video.crossOrigin;
  copy.src = src;
  try {
    if (!(await waitFor(copy, 'loadeddata', deadline))) return { reason: NO_FRAMES.NO_DATA };
    const duration = copy.duration;
    if (!Number.isFinite(duration) || duration > VIDEO_BOUNDS.seconds) return { reason: NO_FRAMES.TOO_LONG };
    const frames = [];
    for (const at of listCaptureTimes(duration)) {
      if (Math.abs(copy.currentTime - at) > 0.01) {
        copy.currentTime = at;
        if (!(await waitFor(copy, 'seeked', deadline))) break;
      }
      const frame = await drawFrame(copy);
      if (frame.reason) return frame;
      frames.push(frame);
    }
    return frames.length > 0 ? frames : { reason: NO_FRAMES.NO_DATA };
  } finally {
    copy.removeAttribute('src');
    copy.load(); // let the browser drop the copy's data
  }
}

/** Moments to capture at: near the start, the middle and near the end (one for a very short video). */
export function listCaptureTimes(duration) {
  if (!(duration > 0.5)) return [0];
  const n = VIDEO_BOUNDS.frames;
  return Array.from({ length: n }, (_, i) => Math.min(duration - 0.05, (duration * (i + 0.5)) / n));
}

async function captureShownFrame(video) {
  if (video.readyState < 2) return { reason: NO_FRAMES.NO_DATA };
  const frame = await drawFrame(video);
  return frame.reason ? frame : [frame];
}

/** The video's current frame as a JPEG ({base64, mime}), or {reason} (a tainted canvas). */
async function drawFrame(video) {
  const scale = Math.min(1, VIDEO_BOUNDS.side / Math.max(video.videoWidth, video.videoHeight, 1));
  const canvas = document.createElement('canvas');
  canvas.width = Math.max(1, Math.round(video.videoWidth * scale));
  canvas.height = Math.max(1, Math.round(video.videoHeight * scale));
  let blob;
  try {
    canvas.getContext('2d').drawImage(video, 0, 0, canvas.width, canvas.height);
    blob = await new Promise((resolve, reject) => {
      try {
        canvas.toBlob(resolve, 'image/jpeg', 0.9);
      } catch (e) {
        reject(e);
      }
    });
  } catch {
    return { reason: NO_FRAMES.TAINTED };
  }
  if (!blob || blob.size > MAX_PAGE_BYTES) return { reason: NO_FRAMES.NO_DATA };
  const dataUrl = await new Promise((resolve) => {
    const reader = new FileReader();
    reader.onload = () => resolve(String(reader.result));
    reader.onerror = () => resolve('');
    reader.readAsDataURL(blob);
  });
  const comma = dataUrl.indexOf(',');
  return comma < 0 ? { reason: NO_FRAMES.NO_DATA } : { base64: dataUrl.slice(comma + 1), mime: 'image/jpeg' };
}

/** Resolves true when `el` fires `type`, false on an error or at `deadline`. */
function waitFor(el, type, deadline) {
  return new Promise((resolve) => {
    const done = (ok) => {
      clearTimeout(timer);
      el.removeEventListener(type, onEvent);
      el.removeEventListener('error', onError);
      resolve(ok);
    };
    const onEvent = () => done(true);
    const onError = () => done(false);
    const timer = setTimeout(() => done(false), Math.max(0, deadline - Date.now()));
    el.addEventListener(type, onEvent, { once: true });
    el.addEventListener('error', onError, { once: true });
  });
}
