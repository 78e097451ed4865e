// sdk_lib.mjs - what every *_sdk_workflow.mjs shares: connect the official TypeScript SDK
// client, named checks that keep going after a failure, exact comparisons, tool calls that
// must succeed or must be refused, and the closing "N passed, N failed" line that
// lib.run_sdk_workflow (tests/integration/lib.py) looks for.
//
//   import { start, check, assert, eq, call, refused, finish } from "./sdk_lib.mjs";
//   const { client } = await start("csmcp-<category>-workflow");  // argv: URL SDK_ESM_DIR ...
//   await check("step", async () => { eq((await call("tool", {...})).x, 1, "x"); });
//   await finish();
import { pathToFileURL } from "node:url";
import path from "node:path";

let passed = 0, failed = 0, client, transport;

// Connects a client named `name` to argv[2] (the /mcp URL) with the SDK under argv[3].
// Returns { client, transport, args } where args are the script's further arguments.
export async function start(name, capabilities = {}) {
  const url = new URL(process.argv[2]);
  const sdk = process.argv[3];
  const { Client } = await import(pathToFileURL(path.join(sdk, "client", "index.js")).href);
  const { StreamableHTTPClientTransport } = await import(
    pathToFileURL(path.join(sdk, "client", "streamableHttp.js")).href);
  client = new Client({ name, version: "1.0.0" }, { capabilities });
  // CSMCP_SDK_TOKEN: a bearer API key (scripts/smoke against a host where auth is required).
  const token = process.env.CSMCP_SDK_TOKEN;
  transport = new StreamableHTTPClientTransport(url, token
    ? { requestInit: { headers: { Authorization: `Bearer ${token}` } } } : undefined);
  return { client, transport, args: process.argv.slice(4) };
}

// Runs one named step; a failure is reported and counted, and the next step still runs.
export async function check(name, fn) {
  try {
    await fn();
    passed++;
    console.log(`ok   ${name}`);
  } catch (e) {
    failed++;
    console.log(`FAIL ${name}: ${e && e.stack ? e.stack : e}`);
  }
}

export function assert(cond, msg) { if (!cond) throw new Error(msg); }

// JSON with sorted keys: jsonb does not keep key order.
export function canon(v) {
  if (Array.isArray(v)) return `[${v.map(canon).join(",")}]`;
  if (v && typeof v === "object") return `{${Object.keys(v).sort().map((k) => `${JSON.stringify(k)}:${canon(v[k])}`).join(",")}}`;
  return JSON.stringify(v);
}

export function eq(a, b, what) {
  if (canon(a) !== canon(b)) throw new Error(`${what}: got ${canon(a)}, want ${canon(b)}`);
}

// A call that must succeed; returns its structuredContent (the SDK validated it against the
// tool's outputSchema).
export async function call(name, args) {
  const r = await client.callTool({ name, arguments: args });
  assert(!r.isError, `${name} failed: ${JSON.stringify(r.content)}`);
  assert(r.structuredContent, `${name}: no structuredContent`);
  return r.structuredContent;
}

// A call that must be refused as a tool error whose text includes `text`.
export async function refused(name, args, text) {
  const r = await client.callTool({ name, arguments: args });
  assert(r.isError, `${name} should be refused`);
  assert(r.content[0].text.includes(text), `${name}: ${r.content[0].text} lacks "${text}"`);
}

// Ends the session, prints "N passed, N failed" and exits 1 on any failure.
export async function finish() {
  if (transport) await transport.terminateSession().catch(() => {});
  if (client) await client.close();
  console.log(`${passed} passed, ${failed} failed`);
  process.exit(failed ? 1 : 0);
}
