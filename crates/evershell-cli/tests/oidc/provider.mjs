// A real OpenID Provider (the `oidc-provider` package) on loopback, for
// Evershell's OIDC sign-in test.
//
// Protocol with the test, over standard streams:
//   1. The script listens on 127.0.0.1 with an ephemeral port and prints
//      `issuer <url>` (Evershell needs the issuer before it starts).
//   2. The test writes one JSON line: { clients: [...], accounts: [...] }.
//      Clients are `oidc-provider` client metadata; accounts are
//      { login, password, sub, email, email_verified }.
//   3. The script builds the provider and prints `ready`.
//
// Sign-in uses the provider's own interaction protocol: the authorization
// endpoint redirects to /interaction/<uid>, where a login form checks the
// password and a consent form grants the requested scopes (or declines).

import { generateKeyPairSync } from 'node:crypto';
import { createServer } from 'node:http';
import { createInterface } from 'node:readline';

import Provider from 'oidc-provider';

let provider = null;
let accounts = new Map();

const server = createServer((req, res) => {
  if (!provider) {
    res.writeHead(503).end('not ready');
    return;
  }
  if (req.url.startsWith('/interaction/')) {
    interaction(req, res).catch((err) => {
      console.error('interaction failed:', err);
      res.writeHead(500).end('interaction failed');
    });
    return;
  }
  provider.callback()(req, res);
});

server.listen(0, '127.0.0.1', () => {
  const { port } = server.address();
  const issuer = `http://127.0.0.1:${port}`;
  console.log(`issuer ${issuer}`);
  const lines = createInterface({ input: process.stdin });
  lines.once('line', (line) => {
    const setup = JSON.parse(line);
    provider = build(issuer, setup);
    accounts = new Map(setup.accounts.map((a) => [a.login, a]));
    console.log('ready');
  });
});

function build(issuer, setup) {
  const signing = [
    ['rsa', { modulusLength: 2048 }, 'RS256'],
    ['ec', { namedCurve: 'P-256' }, 'ES256'],
  ].map(([type, options, alg], i) => {
    const { privateKey } = generateKeyPairSync(type, options);
    return { ...privateKey.export({ format: 'jwk' }), kid: `test-${i}`, alg, use: 'sig' };
  });
  const bySub = (sub) => setup.accounts.find((a) => a.sub === sub);
  return new Provider(issuer, {
    clients: setup.clients,
    jwks: { keys: signing },
    cookies: { keys: ['evershell-test-cookie-key'] },
    claims: { openid: ['sub'], email: ['email', 'email_verified'], profile: ['name'] },
    features: { devInteractions: { enabled: false } },
    // Every client must prove possession of its PKCE verifier.
    pkce: { required: () => true },
    async findAccount(ctx, sub) {
      const account = bySub(sub);
      if (!account) return undefined;
      return {
        accountId: sub,
        async claims() {
          const claims = { sub, email: account.email, name: account.login };
          if (account.email_verified !== undefined) {
            claims.email_verified = account.email_verified;
          }
          return claims;
        },
      };
    },
  });
}

async function interaction(req, res) {
  const details = await provider.interactionDetails(req, res);
  const { uid, prompt, params } = details;

  if (req.method === 'GET') {
    const page = prompt.name === 'login' ? loginForm(uid, params.client_id) : consentForm(uid);
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end(page);
    return;
  }

  const form = new URLSearchParams(await body(req));
  if (req.url.endsWith('/login')) {
    const account = accounts.get(form.get('login'));
    if (!account || account.password !== form.get('password')) {
      res.writeHead(403, { 'content-type': 'text/html; charset=utf-8' }).end('wrong login');
      return;
    }
    await provider.interactionFinished(req, res, { login: { accountId: account.sub } }, {
      mergeWithLastSubmission: false,
    });
    return;
  }

  if (req.url.endsWith('/confirm')) {
    await confirm(req, res, details);
    return;
  }
  // The person declines: the provider answers the client with
  // `error=access_denied` (RFC 6749 §4.1.2.1).
  if (req.url.endsWith('/abort')) {
    await provider.interactionFinished(req, res, {
      error: 'access_denied',
      error_description: 'the person declined',
    }, { mergeWithLastSubmission: false });
    return;
  }
  res.writeHead(404).end();
}

// Grants what the consent prompt found missing, as the provider's own
// consent flow does.
async function confirm(req, res, details) {
  const { prompt, params, session } = details;
  const grant = details.grantId
    ? await provider.Grant.find(details.grantId)
    : new provider.Grant({ accountId: session.accountId, clientId: params.client_id });
  const missing = prompt.details;
  if (missing.missingOIDCScope) grant.addOIDCScope(missing.missingOIDCScope.join(' '));
  if (missing.missingOIDCClaims) grant.addOIDCClaims(missing.missingOIDCClaims);
  const grantId = await grant.save();
  const consent = details.grantId ? {} : { grantId };
  await provider.interactionFinished(req, res, { consent }, { mergeWithLastSubmission: true });
}

function loginForm(uid, clientId) {
  return `<!doctype html><title>Sign in</title>
<p>Sign in to ${escape(clientId)}</p>
<form method="post" action="/interaction/${uid}/login">
<input name="login"><input name="password" type="password"><button>Sign in</button>
</form>`;
}

function consentForm(uid) {
  return `<!doctype html><title>Consent</title>
<form method="post" action="/interaction/${uid}/confirm"><button>Allow</button></form>
<form method="post" action="/interaction/${uid}/abort"><button>Decline</button></form>`;
}

function escape(text) {
  return String(text).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function body(req) {
  return new Promise((resolve, reject) => {
    let text = '';
    req.setEncoding('utf8');
    req.on('data', (chunk) => {
      text += chunk;
      if (text.length > 65536) reject(new Error('form too large'));
    });
    req.on('end', () => resolve(text));
    req.on('error', reject);
  });
}
