// The file worker: seals and uploads files, downloads and opens them, piece by piece, off the
// page's thread. The cryptography is the wasm's (worker/src, which calls engine/src/file.rs);
// this script moves bytes between the disk, the wasm and the relay's blob routes
// (docs/protocol.md, "File blobs"). Neither side ever holds more than a piece (4 MiB).
import init, { SealStream, OpenStream, pieceBytes, sealedPieceBytes, sealedSize } from "/worker.js";

const ready = init({ module_or_path: "/worker.wasm" });
/** Jobs under way, by the page's tag: how to stop each. */
const jobs = new Map();

onmessage = async ({ data }) => {
  if (data.op === "cancel") {
    jobs.get(data.tag)?.abort();
    return;
  }
  const control = new AbortController();
  jobs.set(data.tag, control);
  try {
    await ready;
    const result = data.op === "upload" ? await upload(data, control.signal) : await download(data, control.signal);
    postMessage({ tag: data.tag, result });
  } catch (e) {
    postMessage(control.signal.aborted ? { tag: data.tag, cancelled: true } : { tag: data.tag, error: String(e?.message ?? e) });
  } finally {
    // Whatever still runs for this job (a piece read ahead) stops with it.
    control.abort();
    jobs.delete(data.tag);
    progress.last.delete(data.tag);
  }
};

/** Tells the page how far a job is, at most five times a second (each tells the app to paint). */
function progress(tag, done, total) {
  const now = performance.now();
  const last = progress.last.get(tag) ?? -Infinity;
  if (done === 0 || done === total || now - last >= 200) {
    progress.last.set(tag, now);
    postMessage({ tag, done, total });
  }
  if (done === total) progress.last.delete(tag);
}
progress.last = new Map();


/** A request's own deadline beside the job's cancel: a relay that stalls is tried again. */
const within = (signal) => AbortSignal.any([signal, AbortSignal.timeout(150_000)]);

/** Media types a page of ours may show or play; anything else is only ever saved, typed as
 *  bytes (a sender's `text/html` or `image/svg+xml` never becomes a document of ours). */
const SHOWN = /^(image\/(jpeg|png|gif|webp|avif)|video\/(mp4|webm|ogg)|audio\/(mpeg|mp4|aac|ogg|webm|wav|flac))$/;

/** A refusal that trying again will not change. */
class Refused extends Error {}

/** Waits before the next try (the network dropped, or the relay is restarting): 0.25 s doubling
 *  to 5 s, for about two minutes in all. */
async function pause(attempt, signal) {
  if (attempt >= 30) throw new Error("the relay cannot be reached");
  await new Promise((resolve, reject) => {
    const timer = setTimeout(resolve, Math.min(250 * 2 ** attempt, 5000));
    signal.addEventListener("abort", () => { clearTimeout(timer); reject(new Error("cancelled")); }, { once: true });
  });
}

/** `request()` until the relay answers with something other than a server error. */
async function persist(request, signal) {
  for (let attempt = 0; ; attempt++) {
    try {
      const r = await request();
      if (r.status < 500 && r.status !== 429) return r;
    } catch (e) {
      if (signal.aborted) throw e;
    }
    await pause(attempt, signal);
  }
}

const refusal = (r) => new Refused(
  r.status === 507 ? "the relay has no room for this file now"
    : r.status === 413 ? "this file is larger than this relay takes"
      : `the relay refused the file (${r.status})`);

async function upload({ tag, file }, signal) {
  const total = sealedSize(file.size);
  const made = await persist(() => fetch("/blobs", {
    method: "POST", headers: { "x-sotto-blob-size": String(total) }, signal: within(signal),
  }), signal);
  if (made.status !== 201) throw refusal(made);
  const { id: blob, upload: capability } = await made.json();
  const auth = { authorization: `Bearer ${capability}` };
  try {
    return await fill(tag, file, blob, auth, total, signal);
  } catch (e) {
    // Cancelled or refused: the blob is of no use, and its room goes back to everyone.
    fetch(`/blobs/${blob}`, { method: "DELETE", headers: auth }).catch(() => {});
    throw e;
  }
}

/** Seals `file` into the empty blob `blob`, piece by piece. */
async function fill(tag, file, blob, auth, total, signal) {
  const piece = sealedPieceBytes();
  const size = pieceBytes();
  const pieces = Math.max(1, Math.ceil(file.size / size));
  const stream = new SealStream();
  let received = 0; // ciphertext bytes the relay holds
  progress(tag, 0, total);
  // Piece i + 1 is read and sealed while piece i goes up (in order: each starts after the
  // last). Each piece goes into a Blob at once, so one buffer serves them all.
  const sealedOut = new Uint8Array(piece);
  const prepare = async (i) => {
    const plain = new Uint8Array(await file.slice(i * size, (i + 1) * size).arrayBuffer());
    return new Blob([sealedOut.subarray(0, stream.sealInto(plain, i + 1 === pieces, sealedOut))]);
  };
  let next = prepare(0);
  for (let i = 0; i < pieces; i++) {
    const sealed = await next;
    next = i + 1 < pieces ? prepare(i + 1) : null;
    next?.catch(() => {});
    const start = i * piece;
    const end = start + sealed.size;
    // Where the relay says it stands must be inside this piece: anything else means it lost
    // acknowledged bytes, or holds bytes we never sent.
    const at = (n) => {
      if (!(n >= start && n <= end)) throw new Refused("the relay lost part of the file");
      return n;
    };
    for (let attempt = 0; received < end;) {
      try {
        const r = await fetch(`/blobs/${blob}`, {
          method: "PUT", headers: { ...auth, "x-sotto-offset": String(received) },
          // A Blob: Chromium uploads one six times faster than the same bytes as an array.
          body: sealed.slice(received - start), signal: within(signal),
        });
        if (r.ok || r.status === 409) {
          const now = at((await r.json()).received);
          // Progress starts the tries afresh; a 409 that moves nothing waits like a failure.
          if (now > received) {
            received = now;
            attempt = 0;
            continue;
          }
        } else if (r.status < 500 && r.status !== 429 && r.status !== 408) {
          throw refusal(r);
        }
      } catch (e) {
        if (signal.aborted || e instanceof Refused) throw e;
      }
      // Dropped, busy or restarting: wait, then ask where to go on from (bytes written before
      // a crash count as received).
      await pause(attempt++, signal);
      const asked = await persist(() => fetch(`/blobs/${blob}/received`, { headers: auth, signal: within(signal) }), signal);
      if (!asked.ok) throw refusal(asked);
      received = at((await asked.json()).received);
    }
    progress(tag, received, total);
  }
  return { blob, key: stream.key(), digest: stream.finish() };
}

/** Ciphertext bytes `at..end` of a blob read into the buffer `into.buffer` (a bring-your-own-
 *  buffer read: no garbage per piece, which would otherwise pile up to hundreds of MiB before
 *  the collector ran), tried again while the line is down. Returns a view on that memory (the
 *  read moves it into a new buffer: `into` is spent). */
async function fetchRange(blob, at, end, total, signal, into) {
  const capacity = into.byteLength;
  let memory = into.buffer;
  for (let attempt = 0; ; attempt++) {
    try {
      const r = await fetch(`/blobs/${blob}`, { headers: { range: `bytes=${at}-${end - 1}` }, signal: within(signal) });
      if (r.status === 404) throw new Refused("this file is no longer on the relay");
      if (r.status === 206 || (r.status === 200 && at === 0 && end === total)) {
        const reader = r.body.getReader({ mode: "byob" });
        // A read that failed kept the buffer it was given: start again with a new one.
        if (memory.byteLength === 0) memory = new ArrayBuffer(capacity);
        let n = 0;
        while (n < end - at) {
          const { done, value } = await reader.read(new Uint8Array(memory, n, end - at - n));
          if (done) break;
          memory = value.buffer;
          n += value.byteLength;
        }
        if (n !== end - at) throw new Error("the piece came short");
        if (!(await reader.read(new Uint8Array(1))).done) throw new Refused("the relay sent a damaged file");
        return new Uint8Array(memory, 0, n);
      }
      if (r.status < 500 && r.status !== 429) throw refusal(r);
    } catch (e) {
      if (signal.aborted || e instanceof Refused) throw e;
    }
    await pause(attempt, signal);
  }
}

async function download({ tag, blob, key, digest, size, mediaType }, signal) {
  const stream = new OpenStream(key, size, digest);
  const total = sealedSize(size);
  const { quota, usage } = await navigator.storage.estimate();
  if (quota - usage < size + (64 << 20)) throw new Refused("there is not enough room on this device for this file");
  const piece = sealedPieceBytes();
  // Opened files wait in the origin's private file system while shown (the page deletes them
  // at every start): a 2 GiB video is never in memory.
  const root = await navigator.storage.getDirectory();
  const dir = await root.getDirectoryHandle("opened", { create: true });
  const name = crypto.randomUUID();
  const handle = await dir.getFileHandle(name, { create: true });
  const out = await handle.createSyncAccessHandle();
  try {
    out.truncate(0);
    let at = 0;
    let written = 0;
    progress(tag, 0, total);
    // Piece i + 1 comes down (into the other buffer) while piece i is opened and written.
    const plain = new Uint8Array(pieceBytes());
    let spare = new Uint8Array(piece);
    const fetchFrom = (from, into) => from < total
      ? fetchRange(blob, from, Math.min(from + piece, total), total, signal, into) : null;
    let next = fetchFrom(0, new Uint8Array(piece));
    while (at < total) {
      const end = Math.min(at + piece, total);
      const sealed = await next;
      next = fetchFrom(end, spare);
      next?.catch(() => {});
      const n = stream.openInto(sealed, plain);
      out.write(plain.subarray(0, n), { at: written });
      written += n;
      spare = new Uint8Array(sealed.buffer);
      at = end;
      progress(tag, at, total);
    }
    stream.finish();
    out.flush();
    out.close();
  } catch (e) {
    out.close();
    await dir.removeEntry(name).catch(() => {});
    throw e;
  }
  // Typed by what it is allowed to be, never by the sender's word alone.
  return new File([await handle.getFile()], name, { type: SHOWN.test(mediaType) ? mediaType : "application/octet-stream" });
}
