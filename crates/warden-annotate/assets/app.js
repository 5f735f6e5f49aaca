// Warden annotation UI: vanilla JS, no build step, nothing loaded from elsewhere.
//
// Sample text and every string that comes from the server are put into the page with
// textContent, never parsed as HTML, so a sample containing markup is shown as text.
// State-changing requests carry the X-Warden-UI header the server requires against CSRF.
'use strict';

(function () {
  const VALUES = ['pos', 'neg', 'unsure'];
  const VALUE_NAMES = { pos: 'Positive', neg: 'Negative', unsure: 'Unsure' };
  const VALUE_KEYS = { pos: 'p', neg: 'n', unsure: 'u' };

  const state = {
    me: null,          // {user, role}
    taxonomy: null,    // {categories: [...]}
    queue: null,       // {progress, next, assignments}
    current: null,     // the open assignment
    labels: {},        // code -> 'pos' | 'neg' | 'unsure'
    active: 0,         // index of the selected category
    busy: false,
  };

  const $ = (id) => document.getElementById(id);

  function el(tag, attrs, children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === 'class') e.className = v;
      else if (k === 'text') e.textContent = v;
      else e.setAttribute(k, v);
    }
    for (const c of children || []) e.append(c);
    return e;
  }

  // ---- messages ------------------------------------------------------------------------

  function showError(msg) {
    const e = $('error');
    e.textContent = msg;
    e.hidden = !msg;
  }

  function showNotice(msg) {
    const n = $('notice');
    n.textContent = msg;
    n.hidden = !msg;
  }

  function clearMessages() {
    showError('');
    showNotice('');
  }

  // ---- API -----------------------------------------------------------------------------

  class ApiError extends Error {
    constructor(status, code, message, detail) {
      super(message);
      this.status = status;
      this.code = code;
      this.detail = detail || {};
    }
  }

  async function api(method, path, body) {
    const opts = { method, credentials: 'same-origin', headers: { Accept: 'application/json' } };
    if (method !== 'GET') {
      opts.headers['Content-Type'] = 'application/json';
      opts.headers['X-Warden-UI'] = '1';
      opts.body = JSON.stringify(body || {});
    }
    let resp;
    try {
      resp = await fetch(path, opts);
    } catch (_) {
      throw new ApiError(0, 'network', 'The server cannot be reached.');
    }
    let data = null;
    try {
      data = await resp.json();
    } catch (_) {
      data = null;
    }
    if (!resp.ok) {
      const err = (data && data.error) || {};
      throw new ApiError(resp.status, err.code || 'http_' + resp.status, err.message || resp.statusText, err);
    }
    return data;
  }

  // Handles an API failure: back to the sign-in form when the session is gone.
  function failed(err) {
    if (err instanceof ApiError && err.status === 401 && err.code === 'unauthenticated') {
      showLogin('Your session has ended: sign in again.');
      return;
    }
    showError(err.message || String(err));
  }

  // ---- views ---------------------------------------------------------------------------

  function showLogin(msg) {
    state.me = null;
    state.current = null;
    $('app-view').hidden = true;
    $('whoami').hidden = true;
    $('login-view').hidden = false;
    showNotice('');
    showError(msg || '');
    $('username').focus();
  }

  async function onLogin(ev) {
    ev.preventDefault();
    clearMessages();
    const username = $('username').value.trim();
    const password = $('password').value;
    if (!username || !password) {
      showError('Enter your user name and password.');
      return;
    }
    $('login').disabled = true;
    try {
      state.me = await api('POST', '/api/login', { username, password });
      $('password').value = '';
      await startApp();
    } catch (err) {
      $('password').value = '';
      showError(err.code === 'bad_credentials' ? 'Wrong user name or password.' : err.message);
      $('password').focus();
    } finally {
      $('login').disabled = false;
    }
  }

  async function onLogout() {
    try {
      await api('POST', '/api/logout');
    } catch (_) {
      // Signed out either way.
    }
    showLogin('');
    showNotice('Signed out.');
  }

  async function startApp() {
    $('login-view').hidden = true;
    $('app-view').hidden = false;
    $('whoami').hidden = false;
    $('user-name').textContent = state.me.user;
    $('user-role').textContent = state.me.role;
    if (!state.taxonomy) {
      state.taxonomy = await api('GET', '/api/taxonomy');
      buildCategories();
    }
    await refreshQueue();
    await route();
  }

  // ---- queue ---------------------------------------------------------------------------

  async function refreshQueue() {
    state.queue = await api('GET', '/api/queue');
    renderQueue();
  }

  function renderProgress(p) {
    let text = `${p.done} of ${p.total} done, ${p.skipped} skipped`;
    if (p.pending) text += `, ${p.pending} pending`;
    $('progress').textContent = text;
    const bar = $('progress-bar');
    bar.max = Math.max(1, p.total);
    bar.value = p.done;
  }

  function renderQueue() {
    const q = state.queue;
    renderProgress(q.progress);
    const list = $('queue');
    list.replaceChildren();
    for (const a of q.assignments) {
      const link = el('a', { href: `#/a/${a.id}`, 'data-assignment-id': String(a.id) }, [
        `#${a.id} · ${a.batch} `,
        el('span', { class: `badge kind-${a.batch_kind}`, text: a.batch_kind }),
        ' ',
        el('span', { class: `badge status-${a.status}`, text: a.status }),
      ]);
      if (state.current && state.current.id === a.id) link.setAttribute('aria-current', 'true');
      list.append(el('li', {}, [link]));
    }
  }

  // ---- categories ----------------------------------------------------------------------

  function categories() {
    return state.taxonomy ? state.taxonomy.categories : [];
  }

  function subcatList(title, items, cls) {
    const ul = el('ul', {}, items.map((s) => el('li', { text: s })));
    return el('div', { class: `subcats ${cls}` }, [el('strong', { text: title }), ul]);
  }

  function buildCategories() {
    const box = $('categories');
    box.replaceChildren();
    categories().forEach((c, i) => {
      const legend = el('legend', {}, [
        el('kbd', { text: String(i + 1) }),
        ' ',
        el('span', { class: 'cat-code', text: c.code }),
        ` ${c.name} `,
      ]);
      if (c.parent) legend.append(el('span', { class: 'parent-note', text: `(subcategory of ${c.parent})` }));
      const parts = [legend, el('p', { class: 'definition', text: c.definition || '' })];
      if (c.not_undesired && c.not_undesired.length) {
        parts.push(subcatList('Do not flag (not undesired):', c.not_undesired, 'not-undesired'));
      }
      if (c.undesired_subcategories && c.undesired_subcategories.length) {
        const list = subcatList('', c.undesired_subcategories, 'undesired');
        parts.push(el('details', {}, [el('summary', { text: 'What to flag' }), list]));
      }
      const choices = el(
        'div',
        { class: 'choices', role: 'group', 'aria-label': `${c.code} ${c.name}` },
        VALUES.map((v) =>
          el('button', { type: 'button', 'data-value': v, 'aria-pressed': 'false' }, [
            `${VALUE_NAMES[v]} `,
            el('kbd', { text: VALUE_KEYS[v] }),
          ]),
        ),
      );
      parts.push(choices);
      const fs = el('fieldset', { class: 'cat', 'data-cat': c.code, 'data-index': String(i), id: `cat-${c.code}` }, parts);
      fs.addEventListener('click', (ev) => {
        const b = ev.target.closest('button[data-value]');
        setActive(i, false);
        if (b) setLabel(c.code, b.getAttribute('data-value'));
      });
      box.append(fs);
    });
  }

  function renderLabels() {
    for (const fs of document.querySelectorAll('fieldset.cat')) {
      const code = fs.getAttribute('data-cat');
      const value = state.labels[code] || '';
      fs.setAttribute('data-selected', value);
      for (const b of fs.querySelectorAll('button[data-value]')) {
        b.setAttribute('aria-pressed', b.getAttribute('data-value') === value ? 'true' : 'false');
      }
      if (value) fs.classList.remove('missing');
    }
  }

  function setActive(i, scroll) {
    const cats = categories();
    if (!cats.length) return;
    state.active = Math.max(0, Math.min(cats.length - 1, i));
    document.querySelectorAll('fieldset.cat').forEach((fs, j) => {
      fs.classList.toggle('active', j === state.active);
      if (j === state.active) fs.setAttribute('aria-current', 'true');
      else fs.removeAttribute('aria-current');
    });
    if (scroll) {
      const fs = document.querySelector(`fieldset.cat[data-index="${state.active}"]`);
      if (fs && fs.scrollIntoView) fs.scrollIntoView({ block: 'nearest' });
    }
  }

  function byCode(code) {
    return categories().find((c) => c.code === code);
  }

  // Sets one label and keeps the hierarchy consistent: a positive subcategory makes its
  // ancestors positive; a parent set to negative or unsure passes that value down to any
  // positive subcategory (which could not stay positive).
  function setLabel(code, value) {
    if (!state.current || !VALUES.includes(value)) return;
    state.labels[code] = value;
    const changed = [];
    if (value === 'pos') {
      let c = byCode(code);
      while (c && c.parent) {
        if (state.labels[c.parent] !== 'pos') {
          state.labels[c.parent] = 'pos';
          changed.push(`${c.parent} set to positive because ${code} is positive`);
        }
        c = byCode(c.parent);
      }
    } else {
      const lower = (parent) => {
        for (const child of categories().filter((c) => c.parent === parent)) {
          if (state.labels[child.code] === 'pos') {
            state.labels[child.code] = value;
            changed.push(`${child.code} set to ${VALUE_NAMES[value].toLowerCase()} because ${parent} is not positive`);
          }
          lower(child.code);
        }
      };
      lower(code);
    }
    showNotice(changed.join('; '));
    renderLabels();
  }

  function missingCodes() {
    return categories().filter((c) => !state.labels[c.code]).map((c) => c.code);
  }

  // ---- assignments ---------------------------------------------------------------------

  function hideWork() {
    state.current = null;
    state.labels = {};
    $('sample-text').textContent = '';
    $('sample-panel').hidden = true;
    $('label-panel').hidden = true;
    $('done-panel').hidden = true;
    renderQueue();
  }

  async function openAssignment(id) {
    showError('');
    let a;
    try {
      a = await api('GET', `/api/assignments/${encodeURIComponent(id)}`);
    } catch (err) {
      hideWork();
      if (err.status === 403) {
        showError(`Assignment ${id} is not yours: you cannot open it (forbidden).`);
      } else if (err.status === 404 || err.status === 400) {
        showError(`Assignment ${id} does not exist.`);
      } else {
        failed(err);
      }
      return;
    }
    state.current = a;
    state.labels = Object.assign({}, a.labels || {});
    $('assignment-id').textContent = `#${a.id}`;
    $('batch-name').textContent = a.batch;
    const kind = $('batch-kind');
    kind.textContent = a.batch_kind;
    kind.className = `badge kind-${a.batch_kind}`;
    $('sample-source').textContent = a.sample.source + (a.sample.external_id ? ` / ${a.sample.external_id}` : '');
    const st = $('assignment-status');
    st.textContent = a.status;
    st.className = `badge status-${a.status}`;
    $('sample-text').textContent = a.sample.text;
    $('done-panel').hidden = true;
    $('sample-panel').hidden = false;
    $('label-panel').hidden = false;
    document.querySelectorAll('fieldset.cat').forEach((fs) => fs.classList.remove('missing'));
    renderLabels();
    setActive(0, false);
    renderQueue();
  }

  function showDone() {
    hideWork();
    $('done-panel').hidden = false;
  }

  async function route() {
    const m = /^#\/a\/([^/]+)$/.exec(location.hash);
    if (m) {
      await openAssignment(decodeURIComponent(m[1]));
    } else if (state.queue && state.queue.next != null) {
      history.replaceState(null, '', `#/a/${state.queue.next}`);
      await openAssignment(state.queue.next);
    } else {
      showDone();
    }
  }

  async function goNext(next) {
    if (next != null) {
      history.pushState(null, '', `#/a/${next}`);
      await openAssignment(next);
    } else {
      history.pushState(null, '', '#/');
      showDone();
    }
  }

  async function submit() {
    if (!state.current || state.busy) return;
    const missing = missingCodes();
    if (missing.length) {
      showError(`Label every category before submitting; missing: ${missing.join(', ')}.`);
      for (const code of missing) {
        const fs = document.querySelector(`fieldset.cat[data-cat="${code}"]`);
        if (fs) fs.classList.add('missing');
      }
      setActive(categories().findIndex((c) => c.code === missing[0]), true);
      return;
    }
    await finish('labels', { labels: state.labels }, 'Saved labels for');
  }

  async function skip() {
    if (!state.current || state.busy) return;
    await finish('skip', undefined, 'Skipped');
  }

  // Posts the current assignment's labels or skip, then moves to the next pending one.
  async function finish(action, body, done) {
    state.busy = true;
    const id = state.current.id;
    try {
      const res = await api('POST', `/api/assignments/${id}/${action}`, body);
      showNotice(`${done} assignment #${id}.`);
      $('error').hidden = true;
      await refreshQueue();
      await goNext(res.next);
    } catch (err) {
      failed(err);
    } finally {
      state.busy = false;
    }
  }

  // ---- keyboard ------------------------------------------------------------------------

  function onKey(ev) {
    if ($('app-view').hidden || ev.ctrlKey || ev.metaKey || ev.altKey) return;
    const t = ev.target;
    if (t && (t.isContentEditable || ['INPUT', 'TEXTAREA', 'SELECT'].includes(t.tagName))) return;
    const labelling = !!state.current;
    const k = ev.key;
    let handled = true;
    if (k === 'Enter') {
      // Enter on a link or on a button outside the label controls keeps its usual meaning.
      const own = t && t.closest && (t.closest('a') || (t.closest('button') && !t.closest('#categories')));
      if (own || !labelling) return;
      submit();
    } else if (!labelling) {
      return;
    } else if (/^[1-9]$/.test(k)) {
      const i = Number(k) - 1;
      if (i < categories().length) setActive(i, true);
    } else if (k === 'j' || k === 'ArrowDown') {
      setActive(state.active + 1, true);
    } else if (k === 'k' || k === 'ArrowUp') {
      setActive(state.active - 1, true);
    } else if (k === 'p' || k === 'n' || k === 'u') {
      const value = { p: 'pos', n: 'neg', u: 'unsure' }[k];
      const c = categories()[state.active];
      if (c) setLabel(c.code, value);
      if (state.active < categories().length - 1) setActive(state.active + 1, true);
    } else if (k === 'N') {
      for (const c of categories()) if (!state.labels[c.code]) state.labels[c.code] = 'neg';
      renderLabels();
    } else if (k === 's') {
      skip();
    } else {
      handled = false;
    }
    if (handled) ev.preventDefault();
  }

  // ---- start ---------------------------------------------------------------------------

  async function init() {
    $('login-form').addEventListener('submit', onLogin);
    $('logout').addEventListener('click', onLogout);
    $('submit').addEventListener('click', submit);
    $('skip').addEventListener('click', skip);
    document.addEventListener('keydown', onKey);
    window.addEventListener('hashchange', () => {
      if (state.me) route().catch(failed);
    });
    try {
      state.me = await api('GET', '/api/me');
    } catch (err) {
      showLogin(err.status === 401 ? '' : err.message);
      return;
    }
    try {
      await startApp();
    } catch (err) {
      failed(err);
    }
  }

  document.addEventListener('DOMContentLoaded', () => {
    init().catch(failed);
  });
})();
