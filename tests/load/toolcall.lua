-- toolcall.lua - wrk script: keep-alive POST /mcp tools/call of one fixed tool.
--
-- Environment (set by bench_toolcall.py):
--   BENCH_SESSIONS  file with one Mcp-Session-Id per line, already initialized; requests cycle
--                   over them (thread t starts at session t). Empty or unset: stateless, no
--                   session header.
--   BENCH_TOKEN     Bearer token, or unset
--   BENCH_TOOL      tool name (default test_simple_text)
--   BENCH_PROTOCOL  MCP-Protocol-Version (default 2025-11-25)
--   BENCH_MODERN    "1": the stateless 2026-07-28 wire (_meta in the body, Mcp-Method and
--                   Mcp-Name headers; use with no sessions and BENCH_PROTOCOL=2026-07-28)
-- Every request has its own JSON-RPC id. A response counts as an error when its status is not
-- 200 or its body is not a successful result ("result" present, no "isError":true).
-- done() prints one line "RESULT {json}" that bench_toolcall.py parses.

local threads = {}
local nthreads = 0

function setup(thread)
  thread:set("tid", nthreads)
  nthreads = nthreads + 1
  table.insert(threads, thread)
end

local sessions = {}
local idx = 1
local seq = 0
local heads = {}
local body_head, body_tail
local tool = "test_simple_text"
bad_status = 0
bad_body = 0
sample = ""

function init(args)
  local path = os.getenv("BENCH_SESSIONS")
  if path and path ~= "" then
    local f = io.open(path, "r")
    if f then
      for line in f:lines() do
        if line ~= "" then table.insert(sessions, line) end
      end
      f:close()
    end
  end
  if #sessions > 0 then idx = (tid % #sessions) + 1 end
  tool = os.getenv("BENCH_TOOL") or tool
  -- The request head up to "Content-Length: " is built once per session (wrk.format per request
  -- cost more CPU than the server under test spends on some requests); only the body (with its
  -- fresh id) and its length are formatted per request.
  local common = "POST /mcp HTTP/1.1\r\nHost: " .. wrk.host .. ":" .. wrk.port .. "\r\n" ..
    "Content-Type: application/json\r\nAccept: application/json, text/event-stream\r\n" ..
    "MCP-Protocol-Version: " .. (os.getenv("BENCH_PROTOCOL") or "2025-11-25") .. "\r\n"
  local token = os.getenv("BENCH_TOKEN")
  if token and token ~= "" then common = common .. "Authorization: Bearer " .. token .. "\r\n" end
  if #sessions == 0 then
    heads[1] = common .. "Content-Length: "
  else
    for i, sid in ipairs(sessions) do
      heads[i] = common .. "Mcp-Session-Id: " .. sid .. "\r\nContent-Length: "
    end
  end
  body_head = '{"jsonrpc":"2.0","id":'
  body_tail = ',"method":"tools/call","params":{"name":"' .. tool .. '","arguments":{}}}'
  if os.getenv("BENCH_MODERN") == "1" then
    heads[1] = common .. "Mcp-Method: tools/call\r\nMcp-Name: " .. tool .. "\r\nContent-Length: "
    body_tail = ',"method":"tools/call","params":{"name":"' .. tool .. '","arguments":{},' ..
      '"_meta":{"io.modelcontextprotocol/protocolVersion":"' ..
      (os.getenv("BENCH_PROTOCOL") or "2026-07-28") .. '",' ..
      '"io.modelcontextprotocol/clientCapabilities":{},' ..
      '"io.modelcontextprotocol/clientInfo":{"name":"bench","version":"1"}}}}'
  end
end

function request()
  seq = seq + 1
  local head = heads[1]
  if #sessions > 0 then
    head = heads[idx]
    idx = idx + 1
    if idx > #sessions then idx = 1 end
  end
  local body = body_head .. (tid * 100000000 + seq) .. body_tail
  return head .. #body .. "\r\n\r\n" .. body
end

-- Think time between a connection's requests (BENCH_THINK_MS, uniform 0..2x): models clients
-- that are connected but mostly idle; 0 = back-to-back requests.
local think = tonumber(os.getenv("BENCH_THINK_MS") or "0") or 0
if think > 0 then
  function delay()
    return math.random(0, 2 * think)
  end
end

function response(status, hdrs, body)
  local bad = false
  if status ~= 200 then
    bad_status = bad_status + 1
    bad = true
  elseif not string.find(body, '"result"', 1, true) or string.find(body, '"isError":true', 1, true) then
    bad_body = bad_body + 1
    bad = true
  end
  if bad and sample == "" then
    sample = status .. " " .. string.sub(body or "", 1, 300)
  end
end

local function jsonstr(s)
  return '"' .. string.gsub(s, '[%c"\\]', function(c)
    return string.format("\\u%04x", string.byte(c))
  end) .. '"'
end

function done(summary, latency, requests)
  local bs, bb, smp = 0, 0, ""
  for _, t in ipairs(threads) do
    bs = bs + (t:get("bad_status") or 0)
    bb = bb + (t:get("bad_body") or 0)
    if smp == "" then smp = t:get("sample") or "" end
  end
  local e = summary.errors
  io.write(string.format(
    'RESULT {"requests":%d,"duration_us":%d,"bytes":%d,"p50_us":%d,"p90_us":%d,"p99_us":%d,' ..
    '"p999_us":%d,"max_us":%d,"mean_us":%.1f,"err_connect":%d,"err_read":%d,"err_write":%d,' ..
    '"err_status":%d,"err_timeout":%d,"bad_status":%d,"bad_body":%d,"sample":%s}\n',
    summary.requests, summary.duration, summary.bytes, latency:percentile(50),
    latency:percentile(90), latency:percentile(99), latency:percentile(99.9), latency.max,
    latency.mean, e.connect, e.read, e.write, e.status, e.timeout, bs, bb, jsonstr(smp)))
end
