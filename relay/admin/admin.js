// The operator's page: every request carries the token as a bearer header (never a cookie,
// so no other site can make the browser act with it). The token lives in this tab only.
'use strict';

const $ = (id) => document.getElementById(id);
let token = sessionStorage.getItem('sotto-admin-token') || '';

function say(text) { $('status').textContent = text; }

async function api(path, body) {
  const init = { headers: { authorization: 'Bearer ' + token } };
  if (body !== undefined) {
    init.method = 'POST';
    init.headers['content-type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  const res = await fetch('/admin/api/' + path, init);
  if (res.status === 404) throw new Error('That token does not open this relay\u2019s operator page.');
  if (!res.ok) throw new Error(await res.text());
  return res.headers.get('content-type')?.includes('json') ? res.json() : res.text();
}

function el(tag, props, ...children) {
  const e = document.createElement(tag);
  Object.assign(e, props || {});
  for (const c of children) e.append(c);
  return e;
}

const when = (secs) => new Date(secs * 1000).toLocaleString();

function blockForm(channel) {
  const reason = el('input', { placeholder: 'Reason subscribers will read', maxLength: 500, required: true });
  reason.setAttribute('aria-label', 'Reason for blocking channel ' + channel);
  const button = el('button', { type: 'submit', className: 'danger', textContent: 'Block channel' });
  const form = el('form', { className: 'actions' }, reason, button);
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    await act(() => api('block', { channel, reason: reason.value }), 'Channel blocked.');
  });
  return form;
}

function reportItem(r) {
  const li = el('li');
  li.dataset.channel = r.channel;
  const check = r.text !== null
    ? el('span', { className: 'verified', textContent: 'Verified: published in this channel by one of its admins' })
    : el('span', { className: 'unverified', textContent: 'Not verified: ' + r.problem });
  li.append(el('div', {}, check));
  if (r.text !== null) li.append(el('div', { className: 'post', textContent: r.text }));
  li.append(el('div', { className: 'meta', textContent: `Reported by ${r.reporters} ${r.reporters === 1 ? 'person' : 'people'}. Reason given: ${r.reason || '(none)'}` }));
  li.append(el('div', { className: 'meta' }, 'Channel ', el('code', { textContent: r.channel }),
    ` \u00b7 about ${r.subscribers} subscribers \u00b7 posted ${new Date(r.posted_at_ms).toLocaleString()} \u00b7 reported ${when(r.received_at)}`));
  const dismiss = el('button', { type: 'button', className: 'quiet', textContent: 'Dismiss report' });
  dismiss.addEventListener('click', () => act(() => api('dismiss', { number: r.number }), 'Report dismissed.'));
  if (r.blocked !== null) {
    li.append(el('div', { className: 'actions' }, el('span', { className: 'unverified', textContent: 'Blocked: ' + r.blocked }), dismiss));
  } else {
    const form = blockForm(r.channel);
    form.append(dismiss);
    li.append(form);
  }
  return li;
}

function blockItem(b) {
  const unblock = el('button', { type: 'button', className: 'quiet', textContent: 'Unblock' });
  unblock.addEventListener('click', () => act(() => api('unblock', { channel: b.channel }), 'Channel unblocked.'));
  const li = el('li', {}, el('div', {}, el('code', { textContent: b.channel })),
    el('div', { className: 'meta', textContent: `Since ${when(b.at)}: ${b.reason}` }), el('div', { className: 'actions' }, unblock));
  li.dataset.channel = b.channel;
  return li;
}

async function load() {
  const [reports, blocks] = await Promise.all([api('reports'), api('blocks')]);
  $('reports').replaceChildren(...reports.map(reportItem));
  $('no-reports').hidden = reports.length > 0;
  $('report-count').textContent = reports.length ? `(${reports.length})` : '';
  $('blocks').replaceChildren(...blocks.map(blockItem));
  $('no-blocks').hidden = blocks.length > 0;
  $('login').hidden = true;
  $('desk').hidden = false;
}

async function act(action, done) {
  try {
    await action();
    await load();
    say(done);
  } catch (e) {
    say(e.message);
  }
}

$('login').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  token = $('token').value.trim();
  try {
    await load();
    sessionStorage.setItem('sotto-admin-token', token);
    say('');
  } catch (e) {
    say(e.message);
  }
});
$('refresh').addEventListener('click', () => act(() => Promise.resolve(), 'Up to date.'));
$('logout').addEventListener('click', () => {
  sessionStorage.removeItem('sotto-admin-token');
  location.reload();
});
$('block-by-id').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  await act(() => api('block', { channel: $('block-id').value.trim(), reason: $('block-reason').value }), 'Channel blocked.');
});
if (token) load().catch((e) => say(e.message));
