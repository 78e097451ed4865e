// The TypeScript SDK client's own OAuth flow against csmcp and a real authorization server
// (provider.mjs): connect -> 401 -> the SDK reads the protected-resource metadata, discovers
// the authorization server, registers dynamically, builds the authorization URL with PKCE
// (S256) and the RFC 8707 resource -> this script acts as the user agent (follows the
// redirects, keeps the cookies; the provider completes login and consent for "alice") -> the
// SDK exchanges the code -> reconnect with the token -> tools/list, tools/call.
//
// usage: node sdk_oauth.mjs MCP_URL TOOL ARGS_JSON
// Prints one JSON line: {"ok": bool, "steps": [...], ...}; exit 0 when ok. Tokens are never
// printed (only their decoded claims).
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { UnauthorizedError } from '@modelcontextprotocol/sdk/client/auth.js';

const [mcpUrl, tool, argsJson] = process.argv.slice(2);
const REDIRECT = 'http://127.0.0.1:9/oauth/callback'; // never contacted: the user agent stops there
const out = { ok: false, steps: [] };

class MemoryProvider {
  get redirectUrl() { return REDIRECT; }
  get clientMetadata() {
    return { client_name: 'csmcp oauth e2e', redirect_uris: [REDIRECT],
             grant_types: ['authorization_code'], response_types: ['code'],
             token_endpoint_auth_method: 'none' };
  }
  clientInformation() { return this.info; }
  saveClientInformation(info) { this.info = info; out.steps.push('registered'); out.client_id = info.client_id; }
  tokens() { return this.tok; }
  saveTokens(t) { this.tok = t; out.steps.push('token'); }
  redirectToAuthorization(u) { this.authUrl = u; out.steps.push('authorization_url'); }
  saveCodeVerifier(v) { this.verifier = v; }
  codeVerifier() { return this.verifier; }
}

function claims(jwt) {
  const p = jwt.split('.');
  if (p.length !== 3) return { opaque: true };
  return JSON.parse(Buffer.from(p[1], 'base64url').toString());
}

// The user agent: GET the authorization URL, follow redirects (login + consent are completed
// by the provider's interaction handler), stop at the redirect_uri and return the code.
async function userAgent(start) {
  const jar = new Map();
  let url = start;
  for (let i = 0; i < 12; i++) {
    const cookie = [...jar].map(([k, v]) => `${k}=${v}`).join('; ');
    const res = await fetch(url, { redirect: 'manual', headers: cookie ? { cookie } : {} });
    for (const c of res.headers.getSetCookie()) {
      const [nv] = c.split(';');
      const eq = nv.indexOf('=');
      jar.set(nv.slice(0, eq).trim(), nv.slice(eq + 1).trim());
    }
    const loc = res.headers.get('location');
    if (res.status < 300 || res.status >= 400 || !loc)
      throw new Error(`user agent: HTTP ${res.status} at ${url.pathname}: ${(await res.text()).slice(0, 300)}`);
    url = new URL(loc, url);
    if (url.href.startsWith(REDIRECT)) {
      if (url.searchParams.get('error'))
        throw new Error(`authorization error: ${url.searchParams.get('error')}: ${url.searchParams.get('error_description')}`);
      return url.searchParams.get('code');
    }
  }
  throw new Error('user agent: too many redirects');
}

const provider = new MemoryProvider();
try {
  const url = new URL(mcpUrl);
  let client = new Client({ name: 'csmcp-oauth-e2e', version: '1.0.0' });
  let transport = new StreamableHTTPClientTransport(url, { authProvider: provider });
  try {
    await client.connect(transport);
    throw new Error('connected without a token: the server did not ask for authorization');
  } catch (e) {
    if (!(e instanceof UnauthorizedError)) throw e;
    out.steps.push('401');
  }
  const a = provider.authUrl;
  out.authorization = { endpoint: a.origin + a.pathname,
                        code_challenge_method: a.searchParams.get('code_challenge_method'),
                        has_code_challenge: !!a.searchParams.get('code_challenge'),
                        resource: a.searchParams.get('resource'),
                        scope: a.searchParams.get('scope') };
  const code = await userAgent(a);
  out.steps.push('code');
  await transport.finishAuth(code);
  out.token_claims = claims(provider.tok.access_token);
  out.token_type = provider.tok.token_type;
  client = new Client({ name: 'csmcp-oauth-e2e', version: '1.0.0' });
  transport = new StreamableHTTPClientTransport(url, { authProvider: provider });
  await client.connect(transport);
  out.steps.push('initialized');
  const tools = await client.listTools();
  out.tools = tools.tools.length;
  const r = await client.callTool({ name: tool, arguments: JSON.parse(argsJson || '{}') });
  out.steps.push('tools/call');
  out.call_is_error = !!r.isError;
  out.call_text = (r.content?.[0]?.text || '').slice(0, 200);
  await client.close();
  out.ok = !r.isError;
} catch (e) {
  out.error = String(e && e.stack || e);
}
console.log(JSON.stringify(out));
process.exit(out.ok ? 0 : 1);
