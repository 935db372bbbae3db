// The example page. It never sees a token: it asks the BFF who is signed in (/auth/user), calls the API through
// the BFF (/api/*, with the anti-forgery header X-CSRF: 1), and reacts to the BFF's error codes.

const $ = (id) => document.getElementById(id);

/** The /auth/user answer while signed in, else null. */
let user = null;
/** The token facts of the previous API answer: { issuedAt, expiresAt }. */
let lastToken = null;
/** Demo mode only: { username, password, accessTokenTtl }. */
let demo = null;
let reloadingUser = false;
/** The live feed's WebSocket while one is open or opening, else null. */
let live = null;

const nowSeconds = () => Date.now() / 1000;

function formatDuration(seconds) {
  const s = Math.max(0, Math.round(seconds));
  const d = Math.floor(s / 86400);
  const h = Math.floor((s % 86400) / 3600);
  const m = Math.floor((s % 3600) / 60);
  const parts = d ? [`${d}d`, `${h}h`, `${m}m`] : h ? [`${h}h`, `${m}m`, `${s % 60}s`] : m ? [`${m}m`, `${s % 60}s`] : [`${s}s`];
  return `in ${parts.join(' ')}`;
}

const formatTime = (epochSeconds) => new Date(epochSeconds * 1000).toLocaleTimeString();

function notice(text, { error = false } = {}) {
  const el = $('notice');
  el.textContent = text;
  el.className = error ? 'error' : '';
  el.hidden = !text;
}

async function readJson(res) {
  try {
    return await res.json();
  } catch {
    return {};
  }
}

/** Shows what an error answer of the BFF means for the user. Returns true when the user is now signed out. */
function explainError(res, body) {
  const code = body.error ?? `HTTP ${res.status}`;
  switch (code) {
    case 'login_required':
      notice('You are not signed in (login_required).');
      return true;
    case 'session_ended':
      notice('Your Auth0 session has ended, so the BFF signed you out (session_ended). Log in again.', { error: true });
      return true;
    case 'token_service_unavailable': {
      const retry = res.headers.get('Retry-After');
      notice(`Auth0's token service is not answering (token_service_unavailable). You are still signed in; try again${retry ? ` in ${retry} s` : ' later'}.`, { error: true });
      return false;
    }
    default:
      notice(`The call failed: ${code}${body.error_description ? `: ${body.error_description}` : ''}`, { error: true });
      return false;
  }
}

async function loadUser() {
  const res = await fetch('/auth/user', { headers: { Accept: 'application/json' } });
  const body = await readJson(res);
  if (res.ok) {
    user = body;
  } else {
    user = null;
    lastToken = null;
    // Without a session, login_required is the normal state of a signed-out page: nothing to explain.
    if (body.error !== 'login_required') explainError(res, body);
  }
  render();
}

async function loadDemoInfo() {
  const res = await fetch('/demo/info', { headers: { Accept: 'application/json' } });
  demo = res.ok ? await res.json() : null;
  render();
}

function render() {
  const signedIn = user !== null;
  $('signed-out').hidden = signedIn;
  $('signed-in').hidden = !signedIn;
  $('api').hidden = !signedIn;
  // Signed out, the panel stays while it tells why the feed ended.
  $('live').hidden = !signedIn && $('live-status').dataset.state !== 'closed';
  $('demo').hidden = !signedIn || demo === null;
  $('demo-login').hidden = demo === null;
  if (demo) {
    $('demo-username').textContent = demo.username;
    $('demo-password').textContent = demo.password;
  }
  if (!signedIn) {
    $('api-result').hidden = true;
    $('token-status').dataset.exchange = 'none';
    $('token-status').textContent = 'No call yet.';
    return;
  }
  const claims = user.user;
  $('user-name').textContent = claims.name ?? claims.email ?? claims.sub;
  $('user-sub').textContent = claims.sub;
  $('user-email').textContent = claims.email ?? '(none)';
  $('expires-at').textContent = `(${new Date(user.expiresAt * 1000).toLocaleString()})`;
  $('logout').href = user.logoutUrl ?? '/';
  tick();
}

/** Once a second: the countdowns, and a fresh look at the session when one of its lifetimes is over. */
function tick() {
  if (!user) return;
  const now = nowSeconds();
  $('expires-in').textContent = formatDuration(user.expiresAt - now);
  $('idle-expires-in').textContent = formatDuration(user.idleExpiresAt - now);
  if (lastToken?.expiresAt) {
    const left = lastToken.expiresAt - now;
    $('token-expiry').textContent = left > 0 ? `The access token expires ${formatDuration(left)}.` : 'The access token has expired: the next call makes the BFF exchange its ORT.';
  }
  if (now >= Math.min(user.expiresAt, user.idleExpiresAt) && !reloadingUser) {
    reloadingUser = true;
    loadUser().finally(() => {
      reloadingUser = false;
    });
  }
}

async function callApi() {
  const button = $('call-api');
  button.disabled = true;
  try {
    const res = await fetch('/api/data', { headers: { 'X-CSRF': '1', Accept: 'application/json' } });
    const body = await readJson(res);
    if (!res.ok) {
      $('api-result').hidden = false;
      $('api-result').textContent = `${res.status} ${JSON.stringify(body, null, 2)}`;
      if (explainError(res, body)) {
        user = null;
        lastToken = null;
        render();
      }
      return;
    }
    notice('');
    $('api-result').hidden = false;
    $('api-result').textContent = JSON.stringify(body, null, 2);
    showExchange(body);
    // The call rolled the session's idle expiry forward: show the new one.
    await loadUser();
  } catch (error) {
    notice(`The BFF could not be reached: ${error.message}`, { error: true });
  } finally {
    button.disabled = false;
  }
}

/** Tells from the token's issue time whether the BFF exchanged its ORT since the previous call. */
function showExchange(data) {
  const status = $('token-status');
  const token = { issuedAt: data.tokenIssuedAt, expiresAt: data.tokenExpiresAt };
  let text;
  if (lastToken === null) {
    status.dataset.exchange = 'first';
    text = `First call from this page: access token issued at ${formatTime(token.issuedAt)}.`;
  } else if (token.issuedAt !== lastToken.issuedAt) {
    status.dataset.exchange = 'new';
    text = `New access token (issued ${formatTime(token.issuedAt)}): the previous one expired, so the BFF exchanged its Online Refresh Token.`;
  } else {
    status.dataset.exchange = 'same';
    text = `Same access token as the previous call (issued ${formatTime(token.issuedAt)}).`;
  }
  status.dataset.tokenExpiresAt = String(token.expiresAt);
  status.textContent = `${text} `;
  const expiry = document.createElement('span');
  expiry.id = 'token-expiry';
  status.append(expiry);
  lastToken = token;
  tick();
}

async function endAuth0Session(backchannel) {
  if (!user) return;
  const res = await fetch('/demo/end-auth0-session', {
    method: 'POST',
    headers: { 'X-CSRF': '1', 'Content-Type': 'application/json', Accept: 'application/json' },
    body: JSON.stringify({ backchannel }),
  });
  const body = await readJson(res);
  if (!res.ok) return void explainError(res, body);
  if (backchannel) {
    await loadUser();
    notice(`Auth0 ended ${body.ended} session(s) and sent a back-channel logout: the BFF signed you out at once.`, { error: true });
    return;
  }
  const until = lastToken?.expiresAt ? ` until ${formatTime(lastToken.expiresAt)}` : '';
  notice(`Auth0 ended ${body.ended} session(s), silently. The BFF's access token stays valid${until}; the next API call after that makes it try an exchange, which Auth0 refuses: 401 session_ended.`);
}

function liveStatus(state, text) {
  const status = $('live-status');
  status.dataset.state = state;
  status.textContent = text;
  $('live-toggle').textContent = state === 'open' || state === 'connecting' ? 'Disconnect' : 'Connect';
}

/**
 * Opens the live feed through the BFF. Browsers send the session cookie and the page's Origin with the handshake;
 * they show a script nothing of a refused one (close code 1006), so on 1006 the page asks /auth/user why.
 */
function connectLive() {
  const url = `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/api/live`;
  const socket = new WebSocket(url);
  live = socket;
  $('live-feed').replaceChildren();
  liveStatus('connecting', 'Connecting...');
  socket.addEventListener('open', () => liveStatus('open', 'Connected: the example API sends a tick every second.'));
  socket.addEventListener('message', (event) => {
    const message = JSON.parse(event.data);
    const item = document.createElement('li');
    item.textContent = `${message.type} #${message.n} for ${message.sub} at ${new Date(message.at).toLocaleTimeString()}`;
    $('live-feed').prepend(item);
    while ($('live-feed').children.length > 5) $('live-feed').lastElementChild.remove();
  });
  socket.addEventListener('close', (event) => {
    if (live === socket) live = null;
    const why = event.reason ? ` ${event.reason}` : '';
    switch (event.code) {
      case 4401:
        liveStatus('closed', `Closed by the BFF (4401${why}): your session ended, so its live feed ended with it.`);
        notice('Your session ended (logged out elsewhere, or timed out): the BFF closed the live feed.', { error: true });
        void loadUser();
        break;
      case 1014:
        liveStatus('closed', `Closed by the BFF (1014${why}): the API could not take the connection.`);
        break;
      case 1000:
        liveStatus('closed', 'Disconnected.');
        break;
      default:
        liveStatus('closed', `Closed (${event.code}${why}).`);
        void loadUser();
    }
    render();
  });
}

$('live-toggle').addEventListener('click', () => {
  if (live) live.close(1000);
  else connectLive();
});
$('call-api').addEventListener('click', () => void callApi());
$('end-session').addEventListener('click', () => void endAuth0Session(false));
$('end-session-backchannel').addEventListener('click', () => void endAuth0Session(true));
setInterval(tick, 1000);
await Promise.all([loadUser(), loadDemoInfo()]);
document.body.dataset.ready = 'true';
