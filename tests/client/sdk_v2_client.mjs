// TypeScript SDK v2 client (@modelcontextprotocol/client, pinned in package.json) against csmcpd
// on the stateless 2026-07-28 wire: connect pinned to 2026-07-28 (server/discover), paginate
// tools/list, a real data workflow (list_clients -> get_client_overview of the first account,
// structuredContent validated by the SDK against outputSchema), an input-required round trip
// fulfilled by the SDK's own elicitation handler, and the protocol era reported by the SDK.
// usage: node sdk_v2_client.mjs URL      prints "N passed, N failed", exits non-zero on failure
import { Client, StreamableHTTPClientTransport } from "@modelcontextprotocol/client";

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

const client = new Client({ name: "csmcp-sdk-v2-test", version: "1.0.0" },
                          { capabilities: { elicitation: {} },
                            versionNegotiation: { mode: { pin: "2026-07-28" } } });
client.setRequestHandler("elicitation/create",
                         async () => ({ action: "accept", content: { name: "Ada" } }));
const transport = new StreamableHTTPClientTransport(url);

await check("connect pinned to 2026-07-28 (server/discover, no session)", async () => {
  await client.connect(transport);
  assert(client.getProtocolEra() === "modern", `era ${client.getProtocolEra()}`);
  assert(transport.sessionId === undefined, "no session id on the modern wire");
});

let tools = [];
await check("tools/list: every page", async () => {
  let cursor, pages = 0;
  do {
    const r = await client.listTools(cursor ? { cursor } : {});
    tools.push(...r.tools);
    cursor = r.nextCursor;
    pages++;
    assert(pages < 100, "too many pages");
  } while (cursor);
  // the server pages by 14 (run.py); the SDK may follow nextCursor itself
  assert(tools.length > 14, `expected more tools than one page, got ${tools.length}`);
  assert(new Set(tools.map((t) => t.name)).size === tools.length, "duplicate tool across pages");
  assert(tools.some((t) => t.name === "list_clients"), "list_clients listed");
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

await check("input_required round trip fulfilled by the SDK's elicitation handler", async () => {
  const r = await client.callTool({ name: "test_input_required_result_elicitation", arguments: {} });
  assert(r.content[0].text === "Hello, Ada!", JSON.stringify(r));
});

await check("unknown tool is a protocol error -32602", async () => {
  let err;
  try { await client.callTool({ name: "no_such_tool", arguments: {} }); } catch (e) { err = e; }
  assert(err && err.code === -32602, `got ${err && err.code}`);
});

await client.close();
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
