// TypeScript SDK v1 client against csmcpd: connect, paginate tools/list, call tools, validate
// structuredContent against outputSchema (the SDK does it), the data workflow (list_clients ->
// get_client_overview, as sdk_v2_client.mjs does on the modern wire), terminate the session.
// usage: node sdk_client.mjs URL      prints "N passed, N failed" and exits non-zero on failure
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";

const url = new URL(process.argv[2]);
let passed = 0, failed = 0;
async function check(name, fn) {
  try {
    await fn();
    passed++;
    console.log(`ok   ${name}`);
  } catch (e) {
    failed++;
    console.log(`FAIL ${name}: ${e && e.stack ? e.stack : e}`);
  }
}
function assert(cond, msg) { if (!cond) throw new Error(msg); }

const client = new Client({ name: "csmcp-sdk-test", version: "1.0.0" }, { capabilities: {} });
const transport = new StreamableHTTPClientTransport(url);
let sessionId;

await check("connect (initialize + initialized)", async () => {
  await client.connect(transport);
  sessionId = transport.sessionId;
  assert(typeof sessionId === "string" && /^[\x21-\x7e]+$/.test(sessionId), "visible-ASCII session id");
  assert(client.getServerVersion().name === "csmcp", "server name");
});

let tools = [];
await check("tools/list paginates until nextCursor is absent", async () => {
  let cursor, pages = 0;
  do {
    const r = await client.listTools(cursor ? { cursor } : {});
    tools.push(...r.tools);
    cursor = r.nextCursor;
    pages++;
    assert(pages < 100, "too many pages");
  } while (cursor);
  assert(pages >= 2, `expected several pages, got ${pages}`);
  const names = new Set(tools.map((t) => t.name));
  assert(names.size === tools.length, "duplicate tool across pages");
  assert(names.has("test_simple_text") && names.has("test_structured_output"), "fixtures listed");
  for (const t of tools) assert(t.description && t.inputSchema && t.inputSchema.type === "object", `tool ${t.name} shape`);
});

await check("tools/call test_simple_text", async () => {
  const r = await client.callTool({ name: "test_simple_text", arguments: {} });
  assert(r.content[0].text === "This is a simple text response for testing.", JSON.stringify(r));
});

await check("tools/call with outputSchema: structuredContent validated by the SDK", async () => {
  const r = await client.callTool({ name: "test_structured_output", arguments: { text: "héllo" } });
  assert(r.structuredContent && r.structuredContent.echo === "héllo" && r.structuredContent.length === 6,
         JSON.stringify(r));
});

await check("tools/call with invalid arguments is an isError result naming the path", async () => {
  const r = await client.callTool({ name: "test_structured_output", arguments: { text: 5 } });
  assert(r.isError === true && /arguments\.text/.test(r.content[0].text), JSON.stringify(r));
});

await check("unknown tool is a protocol error -32602", async () => {
  let err;
  try { await client.callTool({ name: "no_such_tool", arguments: {} }); } catch (e) { err = e; }
  assert(err && err.code === -32602, `got ${err}`);
});

await check("progress notifications reach the SDK", async () => {
  const seen = [];
  const r = await client.callTool({ name: "test_tool_with_progress", arguments: {} }, undefined,
                                  { onprogress: (p) => seen.push(p.progress) });
  assert(seen.length >= 3 && seen[0] < seen[seen.length - 1], `progress ${seen}`);
  assert(r.content[0].text.includes("progress"), JSON.stringify(r));
});

let first;
await check("data workflow: list_clients (structuredContent checked by the SDK)", async () => {
  const r = await client.callTool({ name: "list_clients", arguments: { limit: 5 } });
  assert(!r.isError, JSON.stringify(r).slice(0, 400));
  const c = r.structuredContent;
  assert(c && Array.isArray(c.clients) && c.clients.length > 0, "clients returned");
  first = c.clients[0];
});

await check("data workflow: get_client_overview of the first account", async () => {
  const id = first.client_id ?? first.id;
  const r = await client.callTool({ name: "get_client_overview", arguments: { client_id: id } });
  assert(!r.isError, JSON.stringify(r).slice(0, 400));
  assert(JSON.stringify(r.structuredContent).includes(id), "overview names the account");
});

await check("terminateSession (DELETE), then the session is gone (404)", async () => {
  await transport.terminateSession();
  const res = await fetch(url, {
    method: "POST",
    headers: { "Content-Type": "application/json", Accept: "application/json, text/event-stream",
               "Mcp-Session-Id": sessionId, "MCP-Protocol-Version": "2025-11-25" },
    body: JSON.stringify({ jsonrpc: "2.0", id: 99, method: "ping" }),
  });
  assert(res.status === 404, `status ${res.status}`);
});

try { await client.close(); } catch {}
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
