// Operator login. When the node requires credentials (`/api/v1/auth/me` answers 401), a small
// form logs in: the node sets an HttpOnly session cookie and returns a CSRF token, which every
// state-changing request then carries in `X-CSRF-Token`. On an open node nothing is shown.

let csrf = null;
const plainFetch = window.fetch.bind(window);

// Adds the CSRF token to state-changing requests (the cookie alone is not enough).
window.fetch = (input, init = {}) => {
  const method = (init.method || (input instanceof Request ? input.method : 'GET')).toUpperCase();
  if (csrf && method !== 'GET' && method !== 'HEAD') {
    const headers = new Headers(init.headers || {});
    headers.set('X-CSRF-Token', csrf);
    init = { ...init, headers };
  }
  return plainFetch(input, init);
};

function loginForm() {
  return new Promise((resolve) => {
    const form = document.createElement('form');
    form.id = 'login';
    form.setAttribute('aria-label', 'Log in');
    form.style.cssText = 'position:fixed;inset:0;margin:auto;width:18em;height:fit-content;z-index:10000;'
      + 'padding:1em;display:flex;flex-direction:column;gap:.5em;background:var(--bg,#fff);'
      + 'color:var(--fg,#000);border:1px solid #888;border-radius:6px;box-shadow:0 4px 24px #0008';
    form.innerHTML = '<strong>Rampart: log in</strong>'
      + '<label>User <input name="user" autocomplete="username" required></label>'
      + '<label>Password <input name="password" type="password" autocomplete="current-password" required></label>'
      + '<button type="submit">Log in</button><span class="muted" role="alert"></span>';
    const msg = form.querySelector('[role=alert]');
    form.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      const body = { user: form.user.value, password: form.password.value };
      const r = await plainFetch('/api/v1/auth/login', {
        method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body),
      }).catch(() => null);
      if (r && r.ok) {
        csrf = (await r.json()).csrf_token;
        form.remove();
        resolve();
        return;
      }
      form.password.value = '';
      msg.textContent = !r ? 'The node did not answer.'
        : r.status === 429 ? 'Too many failed logins: wait a minute.' : 'Wrong user name or password.';
    });
    document.body.appendChild(form);
    form.user.focus();
  });
}

/** Resolves once the console may call the API: at once on an open node, after login otherwise. */
export async function ensureLogin() {
  const r = await plainFetch('/api/v1/auth/me').catch(() => null);
  if (r && r.ok) {
    csrf = (await r.json()).csrf_token || null;
    return;
  }
  if (r && r.status === 401) await loginForm();
}
