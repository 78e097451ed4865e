// sdk_server.mjs - the official TypeScript SDK (v1) MCP server that csmcpd is benchmarked against.
//
// Exposes the conformance fixture tool test_simple_text over Streamable HTTP on 127.0.0.1, in
// the SDK's fastest configurations on this machine (node:http directly, no express middleware,
// JSON responses instead of SSE):
//   --mode stateful    one McpServer + StreamableHTTPServerTransport per session (the SDK's
//                      documented session pattern); sessions live in this one process.
//   --mode stateless   sessionIdGenerator undefined: a fresh McpServer + transport per request
//                      (the SDK refuses to reuse a stateless transport), under node:cluster
//                      with --workers processes (default 2 = the cores of this machine).
// Usage: node sdk_server.mjs --mode stateful|stateless --port N [--workers N] [--sched rr|none]
import cluster from 'node:cluster';
import http from 'node:http';
import { randomUUID } from 'node:crypto';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { isInitializeRequest } from '@modelcontextprotocol/sdk/types.js';

function arg(name, def) {
  const i = process.argv.indexOf('--' + name);
  return i > 0 && i + 1 < process.argv.length ? process.argv[i + 1] : def;
}

const mode = arg('mode', 'stateful');
const port = Number(arg('port', '19600'));
const host = '127.0.0.1';
const workers = Number(arg('workers', mode === 'stateless' ? '2' : '1'));
const maxBody = 4 * 1024 * 1024;

function makeServer() {
  const server = new McpServer({ name: 'sdk-bench', version: '1.0.0' });
  server.registerTool(
    'test_simple_text',
    { description: 'Tests simple text content response' },
    async () => ({
      content: [{ type: 'text', text: 'This is a simple text response for testing.' }],
    }),
  );
  return server;
}

function sendError(res, status, code, message) {
  res.writeHead(status, { 'Content-Type': 'application/json' });
  res.end(JSON.stringify({ jsonrpc: '2.0', error: { code, message }, id: null }));
}

function readJson(req) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    let size = 0;
    req.on('data', (c) => {
      size += c.length;
      if (size > maxBody) {
        reject(new Error('body too large'));
        req.destroy();
      } else {
        chunks.push(c);
      }
    });
    req.on('end', () => {
      try {
        resolve(chunks.length ? JSON.parse(Buffer.concat(chunks).toString('utf8')) : undefined);
      } catch (e) {
        reject(e);
      }
    });
    req.on('error', reject);
  });
}

const sessions = new Map(); // stateful: session id -> transport

async function handleStateful(req, res, body) {
  const sid = req.headers['mcp-session-id'];
  let transport = sid ? sessions.get(sid) : undefined;
  if (!transport) {
    if (sid) return sendError(res, 404, -32001, 'Session not found');
    if (req.method !== 'POST' || !isInitializeRequest(body))
      return sendError(res, 400, -32000, 'Bad Request: No valid session ID provided');
    transport = new StreamableHTTPServerTransport({
      sessionIdGenerator: () => randomUUID(),
      enableJsonResponse: true,
      onsessioninitialized: (id) => sessions.set(id, transport),
    });
    transport.onclose = () => {
      if (transport.sessionId) sessions.delete(transport.sessionId);
    };
    await makeServer().connect(transport);
  }
  await transport.handleRequest(req, res, body);
}

async function handleStateless(req, res, body) {
  const server = makeServer();
  const transport = new StreamableHTTPServerTransport({
    sessionIdGenerator: undefined,
    enableJsonResponse: true,
  });
  res.on('close', () => {
    transport.close();
    server.close();
  });
  await server.connect(transport);
  await transport.handleRequest(req, res, body);
}

function serve() {
  const handler = mode === 'stateless' ? handleStateless : handleStateful;
  const srv = http.createServer(async (req, res) => {
    try {
      if (req.url !== '/mcp') return sendError(res, 404, -32000, 'Not found');
      let body;
      if (req.method === 'POST') {
        try {
          body = await readJson(req);
        } catch {
          return sendError(res, 400, -32700, 'Parse error');
        }
      }
      await handler(req, res, body);
    } catch (e) {
      if (!res.headersSent) sendError(res, 500, -32603, 'Internal error');
    }
  });
  srv.keepAliveTimeout = 60000;
  srv.headersTimeout = 65000;
  srv.listen(port, host, () => {
    if (!cluster.isWorker || cluster.worker.id === 1)
      console.log(`sdk_server ${mode} listening on http://${host}:${port}/mcp (pid ${process.pid})`);
  });
}

if (mode !== 'stateful' && mode !== 'stateless') {
  console.error('--mode must be stateful or stateless');
  process.exit(2);
}
if (workers > 1 && mode === 'stateful') {
  console.error('stateful sessions live in one process: --workers must be 1');
  process.exit(2);
}

if (workers > 1 && cluster.isPrimary) {
  if (arg('sched', 'rr') === 'none') cluster.schedulingPolicy = cluster.SCHED_NONE;
  for (let i = 0; i < workers; i++) cluster.fork();
  const stop = () => {
    for (const w of Object.values(cluster.workers)) w.process.kill('SIGTERM');
    process.exit(0);
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
} else {
  serve();
}
