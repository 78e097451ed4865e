// The client set-ups of docs/clients.md, each driven by the official TypeScript SDK client:
//   http  URL                      Streamable HTTP, Authorization from $CSMCP_TOKEN
//                                  (the SDK client with an API key or a token from elsewhere)
//   stdio NODE PROXY_JS URL ARGS   a stdio MCP client (what Claude Desktop is) talking to the
//                                  mcp-remote proxy, which talks Streamable HTTP to csmcp
// Then tools/list and tools/call TOOL (read). Prints one JSON line; exit 0 when it worked.
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';

const [mode, ...rest] = process.argv.slice(2);
const tool = process.env.CSMCP_TOOL || 'get_autonomous_status';
const out = { ok: false, mode };
let stderr = '';
try {
  let transport;
  if (mode === 'http') {
    transport = new StreamableHTTPClientTransport(new URL(rest[0]), {
      requestInit: { headers: { Authorization: `Bearer ${process.env.CSMCP_TOKEN}` } } });
  } else {
    const [node, proxy, url, ...args] = rest;
    transport = new StdioClientTransport({ command: node, args: [proxy, url, ...args],
                                           env: process.env, stderr: 'pipe' });
    transport.stderr?.on('data', (d) => { stderr += d; });
  }
  const client = new Client({ name: 'csmcp-client-setups', version: '1.0.0' });
  await client.connect(transport);
  out.server = client.getServerVersion()?.name;
  out.tools = (await client.listTools()).tools.length;
  const r = await client.callTool({ name: tool, arguments: {} });
  out.call_is_error = !!r.isError;
  await client.close();
  out.ok = !r.isError && out.tools > 0;
} catch (e) {
  out.error = String(e && e.stack || e);
  out.proxy_stderr = stderr.slice(-2000);
}
console.log(JSON.stringify(out));
process.exit(out.ok ? 0 : 1);
