// A real OpenID provider (oidc-provider, pinned in package.json) for the OAuth end-to-end
// test: HTTPS on 127.0.0.1 with a certificate from the test's own CA, dynamic client
// registration, authorization code + PKCE (S256), client credentials, RFC 8707 resource
// indicators (JWT access tokens bound to the requested resource), introspection, revocation.
//
// The interaction (login + consent) is completed automatically for user "alice": the test
// plays the user agent by following redirects. Test-only control endpoints (127.0.0.1 only):
//   POST /__test/rotate?mode=add   new RS256 signing key first, the old ones still published
//   POST /__test/rotate?mode=drop  only the newest key stays published
//   GET  /__test/kids               the published kids, signing key first
// A rotation builds a new Provider with the new key set on the same in-process storage, so
// clients, grants and tokens survive it.
//
// usage: node provider.mjs PORT CERT KEY RESOURCE_JWT RESOURCE_OPAQUE
import { generateKeyPairSync, randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import https from 'node:https';
import Provider from 'oidc-provider';

const [port, certFile, keyFile, resourceJwt, resourceOpaque] = process.argv.slice(2);
const issuer = `https://127.0.0.1:${port}`;
const OTHER = 'https://other.example.test/mcp';

function newKey() {
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  return { ...privateKey.export({ format: 'jwk' }), kid: `k-${randomUUID().slice(0, 8)}`, alg: 'RS256', use: 'sig' };
}

let keys = [newKey()];

// RFC 8707: the resources this AS issues tokens for. resourceJwt gets RS256 JWTs (verified
// by csmcp against the JWKS), resourceOpaque opaque tokens (csmcp must introspect them),
// OTHER a JWT for someone else (csmcp must refuse it).
function resourceServer(ctx, indicator, client) {
  const ttl = client.clientId === 'short-lived' ? 2 : 600;
  if (indicator === resourceJwt || indicator === OTHER)
    return { scope: 'read write admin', audience: indicator, accessTokenTTL: ttl,
             accessTokenFormat: 'jwt', jwt: { sign: { alg: 'RS256' } } };
  if (indicator === resourceOpaque)
    return { scope: 'read write admin', audience: indicator, accessTokenTTL: ttl,
             accessTokenFormat: 'opaque' };
  throw new Error(`unknown resource ${indicator}`);
}

function config() {
  return {
    clients: [
      { client_id: 'loadgen', client_secret: 'loadgen-secret-0123456789abcdef',
        grant_types: ['client_credentials'], redirect_uris: [], response_types: [] },
      { client_id: 'short-lived', client_secret: 'short-secret-0123456789abcdef',
        grant_types: ['client_credentials'], redirect_uris: [], response_types: [] },
      { client_id: 'csmcp-rs', client_secret: 'csmcp-rs-secret-0123456789abcdef',
        grant_types: [], redirect_uris: [], response_types: [] },
    ],
    jwks: { keys },
    scopes: ['openid', 'offline_access', 'read', 'write', 'admin'],
    claims: { openid: ['sub'] },
    findAccount: async (ctx, id) => ({ accountId: id, claims: async () => ({ sub: id }) }),
    interactions: { url: (ctx, interaction) => `/interaction/${interaction.uid}` },
    pkce: { required: () => true },
    features: {
      devInteractions: { enabled: false },
      registration: { enabled: true },
      clientCredentials: { enabled: true },
      introspection: { enabled: true },
      revocation: { enabled: true },
      resourceIndicators: {
        enabled: true,
        defaultResource: () => resourceJwt,
        useGrantedResource: () => true,
        getResourceServerInfo: resourceServer,
      },
    },
    ttl: { AccessToken: 600, AuthorizationCode: 60, Grant: 3600, Interaction: 600, Session: 3600 },
    cookies: { keys: ['csmcp-oauth-test-cookie-key'] },
  };
}

let provider = build();
let handler = provider.callback();

function build() {
  const p = new Provider(issuer, config());
  // Cache-Control on the JWKS: csmcp must refresh by it (2 s here), not by its own maximum.
  p.use(async (ctx, next) => {
    await next();
    if (ctx.path === '/jwks') ctx.set('Cache-Control', 'public, max-age=2');
  });
  return p;
}

async function interaction(req, res) {
  const details = await provider.interactionDetails(req, res);
  const { prompt, params, session } = details;
  if (prompt.name === 'login') {
    await provider.interactionFinished(req, res, { login: { accountId: 'alice' } },
      { mergeWithLastSubmission: false });
    return;
  }
  const grant = details.grantId
    ? await provider.Grant.find(details.grantId)
    : new provider.Grant({ accountId: session.accountId, clientId: params.client_id });
  const d = prompt.details;
  if (d.missingOIDCScope) grant.addOIDCScope(d.missingOIDCScope.join(' '));
  if (d.missingOIDCClaims) grant.addOIDCClaims(d.missingOIDCClaims);
  if (d.missingResourceScopes)
    for (const [indicator, scopes] of Object.entries(d.missingResourceScopes))
      grant.addResourceScope(indicator, scopes.join(' '));
  const grantId = await grant.save();
  await provider.interactionFinished(req, res, { consent: { grantId } },
    { mergeWithLastSubmission: true });
}

const server = https.createServer(
  { cert: readFileSync(certFile), key: readFileSync(keyFile) },
  async (req, res) => {
    try {
      const url = new URL(req.url, issuer);
      if (url.pathname === '/__test/rotate' && req.method === 'POST') {
        const mode = url.searchParams.get('mode');
        keys = mode === 'drop' ? [keys[0]] : [newKey(), ...keys];
        provider = build();
        handler = provider.callback();
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ kids: keys.map((k) => k.kid) }));
        return;
      }
      if (url.pathname === '/__test/kids') {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ kids: keys.map((k) => k.kid) }));
        return;
      }
      if (url.pathname.startsWith('/interaction/')) {
        await interaction(req, res);
        return;
      }
      handler(req, res);
    } catch (e) {
      res.writeHead(500, { 'content-type': 'text/plain' });
      res.end(String(e && e.stack || e));
    }
  });
server.listen(Number(port), '127.0.0.1', () => {
  console.log(`provider ready ${issuer} kid=${keys[0].kid}`);
});
