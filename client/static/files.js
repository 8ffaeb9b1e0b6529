// The page's side of files, for the wasm app (client/src/files.rs calls these through
// `globalThis.sottoFiles`): the worker that seals and opens them, photo thumbnails, media
// lengths, voice recording and saving to disk.

let worker = null;
/** Jobs sent to the worker, by tag: their promise's ends and their progress callback. */
const jobs = new Map();

function work(message, progress) {
  if (!worker) {
    worker = new Worker("/file-worker.js", { type: "module" });
    worker.onmessage = ({ data }) => {
      const job = jobs.get(data.tag);
      if (!job) return;
      if ("done" in data) return job.progress(data.done, data.total);
      jobs.delete(data.tag);
      if (data.cancelled) job.reject(new DOMException("cancelled", "AbortError"));
      else if ("error" in data) job.reject(new Error(data.error));
      else job.resolve(data.result);
    };
    worker.onerror = (e) => {
      for (const [, job] of jobs) job.reject(new Error(`the file worker stopped: ${e.message}`));
      jobs.clear();
      worker = null;
    };
  }
  return new Promise((resolve, reject) => {
    jobs.set(message.tag, { resolve, reject, progress });
    worker.postMessage(message);
  });
}

/** Seals and uploads a file: `{blob, key, digest, size}`; `progress(done, total)` on the way. */
export function upload(tag, file, progress) {
  return work({ op: "upload", tag, file }, progress);
}

/** Downloads and opens a file: a `File` on disk (the origin's private file system). */
export function download(tag, blob, key, digest, size, mediaType, progress) {
  return work({ op: "download", tag, blob, key, digest, size, mediaType }, progress);
}

export function cancel(tag) {
  worker?.postMessage({ op: "cancel", tag });
}

/** Forgets the files opened by earlier visits (called once this tab leads: other tabs wait, so
 *  none of them is showing one). */
export async function forgetOpened() {
  try {
    const root = await navigator.storage.getDirectory();
    await root.removeEntry("opened", { recursive: true });
  } catch { /* nothing there */ }
}

/** How a file shows in its message: `{kind: "image", width, height, thumbnail, file}` (a JPEG
 *  thumbnail of at most `maxThumbnail` bytes, and the photo drawn again without what its file
 *  says beside the picture: the camera, the time, where it was taken), `{kind: "media",
 *  duration_ms}` or `{kind: "file"}`. */
export async function describe(file, maxThumbnail) {
  const type = file.type || "";
  if (type.startsWith("image/")) {
    try {
      const bitmap = await createImageBitmap(file);
      const { width, height } = bitmap;
      const clean = await withoutMetadata(file, bitmap);
      for (const side of [320, 200, 120, 64]) {
        const scale = Math.min(1, side / Math.max(width, height));
        const canvas = new OffscreenCanvas(Math.max(1, Math.round(width * scale)), Math.max(1, Math.round(height * scale)));
        canvas.getContext("2d").drawImage(bitmap, 0, 0, canvas.width, canvas.height);
        for (const quality of [0.75, 0.5]) {
          const jpeg = await canvas.convertToBlob({ type: "image/jpeg", quality });
          if (jpeg.size <= maxThumbnail) {
            bitmap.close();
            return { kind: "image", width, height, thumbnail: new Uint8Array(await jpeg.arrayBuffer()), file: clean };
          }
        }
      }
      bitmap.close();
    } catch { /* an image this browser cannot read goes as a file */ }
  }
  if (type.startsWith("video/") || type.startsWith("audio/")) {
    const duration = await mediaDuration(file);
    if (duration !== null) return { kind: "media", duration_ms: duration };
  }
  return { kind: "file" };
}

/** A still photo drawn again (same type; JPEG at quality 0.92): EXIF and the like (GPS
 *  position, camera, time) do not survive. Animated GIFs and very large images go as they are. */
async function withoutMetadata(file, bitmap) {
  if (!/^image\/(jpeg|png|webp)$/.test(file.type) || bitmap.width * bitmap.height > 40e6) return file;
  const canvas = new OffscreenCanvas(bitmap.width, bitmap.height);
  canvas.getContext("2d").drawImage(bitmap, 0, 0);
  const drawn = await canvas.convertToBlob({ type: file.type, quality: 0.92 });
  return new File([drawn], file.name, { type: drawn.type });
}

/** A media file's length in milliseconds, or `null` if this browser cannot play it. */
function mediaDuration(file) {
  return new Promise((resolve) => {
    const media = document.createElement(file.type.startsWith("video/") ? "video" : "audio");
    const url = URL.createObjectURL(file);
    const done = (value) => { URL.revokeObjectURL(url); resolve(value); };
    media.preload = "metadata";
    media.onloadedmetadata = () => done(Number.isFinite(media.duration) ? Math.round(media.duration * 1000) : 0);
    media.onerror = () => done(null);
    media.src = url;
  });
}

/** Starts recording a voice message (Opus where the browser has it). The recorder's `stop()`
 *  gives `{file, duration_ms, waveform}` (at most `maxLevels` levels, 0 to 255); `cancel()`
 *  drops it. Either turns the microphone off. */
export async function record(maxLevels) {
  const stream = await navigator.mediaDevices.getUserMedia({ audio: true });
  const mimeType = ["audio/webm;codecs=opus", "audio/ogg;codecs=opus"].find((t) => MediaRecorder.isTypeSupported(t));
  // 32 kbit/s Opus: a voice message of an hour stays under the 16 MiB a voice message may be.
  const recorder = new MediaRecorder(stream, { audioBitsPerSecond: 32_000, ...(mimeType ? { mimeType } : {}) });
  const parts = [];
  recorder.ondataavailable = (e) => e.data.size && parts.push(e.data);
  const audio = new AudioContext();
  const analyser = audio.createAnalyser();
  audio.createMediaStreamSource(stream).connect(analyser);
  const samples = new Uint8Array(analyser.fftSize);
  const levels = [];
  const meter = setInterval(() => {
    analyser.getByteTimeDomainData(samples);
    let peak = 0;
    for (const s of samples) peak = Math.max(peak, Math.abs(s - 128));
    levels.push(Math.min(255, peak * 2));
  }, 50);
  const started = performance.now();
  const end = () => {
    clearInterval(meter);
    stream.getTracks().forEach((t) => t.stop());
    audio.close();
  };
  recorder.start(500);
  return {
    stop: () => new Promise((resolve) => {
      recorder.onstop = () => {
        end();
        const type = (recorder.mimeType || "audio/webm").split(";")[0];
        const file = new File(parts, `voice.${type.split("/")[1]}`, { type });
        resolve({ file, duration_ms: Math.round(performance.now() - started), waveform: squeeze(levels, maxLevels) });
      };
      recorder.stop();
    }),
    cancel: () => {
      recorder.onstop = end;
      recorder.stop();
    },
  };
}

/** `levels` as at most `n` values (the loudest of each stretch). */
function squeeze(levels, n) {
  if (levels.length <= n) return Uint8Array.from(levels);
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    const from = Math.floor((i * levels.length) / n);
    const to = Math.floor(((i + 1) * levels.length) / n);
    out[i] = Math.max(...levels.slice(from, Math.max(to, from + 1)));
  }
  return out;
}

/** Reads the camera, shown in the `<video>` with id `videoId`, until a QR code is found in a
 *  frame: its bytes. The decoder is its own small wasm (scanner/), fetched the first time.
 *  Stops when that element leaves the page. */
export async function scanQr(videoId) {
  const scanner = await import("/scanner.js");
  await scanner.default({ module_or_path: "/scanner.wasm" });
  const stream = await navigator.mediaDevices.getUserMedia({ video: { facingMode: "environment" } });
  const pause = (ms) => new Promise((r) => setTimeout(r, ms));
  try {
    let video = null;
    for (let i = 0; i < 50 && !video; i++, await pause(20)) video = document.getElementById(videoId);
    if (!video) throw new DOMException("cancelled", "AbortError");
    video.srcObject = stream;
    await video.play();
    const canvas = new OffscreenCanvas(1, 1);
    const g = canvas.getContext("2d", { willReadFrequently: true });
    for (;;) {
      if (!video.isConnected) throw new DOMException("cancelled", "AbortError");
      const [w, h] = [video.videoWidth, video.videoHeight];
      if (w && h) {
        [canvas.width, canvas.height] = [w, h];
        g.drawImage(video, 0, 0);
        const found = scanner.decodeQr(new Uint8Array(g.getImageData(0, 0, w, h).data.buffer), w, h);
        if (found) return found;
      }
      await pause(150);
    }
  } finally {
    for (const t of stream.getTracks()) t.stop();
  }
}

/** Saves a file to the person's disk under `name`. */
export function save(file, name) {
  const a = document.createElement("a");
  a.href = URL.createObjectURL(file);
  a.download = name;
  a.click();
  setTimeout(() => URL.revokeObjectURL(a.href), 60_000);
}
