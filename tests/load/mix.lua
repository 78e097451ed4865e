-- mix.lua - wrk script: a realistic Customer Success tool mix over many sessions and accounts.
--
--   35% get_client_overview {client_id}          \ 70% reads
--   35% list_clients {limit 20, page, filters}   /
--   10% calculate_health_score {client_id}       \ 20% analytics (the score is stored)
--   10% track_usage_engagement {client_id}       /
--   10% update_client_info {client_id, updates}    10% writes
--
-- Environment (set by bench_mix.py):
--   BENCH_SESSIONS  file: one initialized Mcp-Session-Id per line (thread t starts at line t*K)
--   BENCH_ACCOUNTS  file: one client_id per line (picked uniformly)
--   BENCH_TOKEN     Bearer token, or unset
--   BENCH_SEED      random seed of this wrk process
-- Errors by kind: non-200 status, JSON-RPC error, isError result. done() prints "RESULT {json}"
-- with one sample of an error body.

local threads = {}
local nthreads = 0

function setup(thread)
  thread:set("tid", nthreads)
  nthreads = nthreads + 1
  table.insert(threads, thread)
end

local sessions, accounts = {}, {}
local idx, seq = 1, 0
local headers = {}
bad_status, rpc_error, tool_error, sample = 0, 0, 0, ""

local function lines(path, into)
  if not path or path == "" then return end
  local f = io.open(path, "r")
  if not f then return end
  for line in f:lines() do
    if line ~= "" then table.insert(into, line) end
  end
  f:close()
end

function init(args)
  lines(os.getenv("BENCH_SESSIONS"), sessions)
  lines(os.getenv("BENCH_ACCOUNTS"), accounts)
  math.randomseed((tonumber(os.getenv("BENCH_SEED")) or 1) * 1000 + tid)
  if #sessions > 0 then idx = ((tid * 997) % #sessions) + 1 end
  headers["Content-Type"] = "application/json"
  headers["Accept"] = "application/json, text/event-stream"
  headers["MCP-Protocol-Version"] = os.getenv("BENCH_PROTOCOL") or "2025-11-25"
  local token = os.getenv("BENCH_TOKEN")
  if token and token ~= "" then headers["Authorization"] = "Bearer " .. token end
end

local tiers = {"starter", "standard", "professional", "enterprise"}

local function call()
  local r = math.random()
  local cid = accounts[math.random(#accounts)]
  if r < 0.35 then
    return "get_client_overview", '{"client_id":"' .. cid .. '"}'
  elseif r < 0.70 then
    local a = '{"limit":20,"offset":' .. (math.random(0, 49) * 20)
    if math.random() < 0.5 then a = a .. ',"tier_filter":"' .. tiers[math.random(4)] .. '"' end
    if math.random() < 0.3 then a = a .. ',"sort_by":"health_score","sort_order":"desc"' end
    return "list_clients", a .. "}"
  elseif r < 0.80 then
    return "calculate_health_score", '{"client_id":"' .. cid .. '"}'
  elseif r < 0.90 then
    return "track_usage_engagement", '{"client_id":"' .. cid .. '"}'
  end
  return "update_client_info",
    '{"client_id":"' .. cid .. '","updates":{"csm_assigned":"csm-' .. math.random(1, 50) .. '"}}'
end

function request()
  seq = seq + 1
  if #sessions > 0 then
    headers["Mcp-Session-Id"] = sessions[idx]
    idx = idx + 1
    if idx > #sessions then idx = 1 end
  end
  local name, args = call()
  local body = '{"jsonrpc":"2.0","id":' .. (tid * 100000000 + seq) ..
    ',"method":"tools/call","params":{"name":"' .. name .. '","arguments":' .. args .. '}}'
  return wrk.format("POST", "/mcp", headers, body)
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
  elseif string.find(body, '"error":{', 1, true) and not string.find(body, '"result"', 1, true) then
    rpc_error = rpc_error + 1
    bad = true
  elseif string.find(body, '"isError":true', 1, true) then
    tool_error = tool_error + 1
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
  local bs, re, te, smp = 0, 0, 0, ""
  for _, t in ipairs(threads) do
    bs = bs + (t:get("bad_status") or 0)
    re = re + (t:get("rpc_error") or 0)
    te = te + (t:get("tool_error") or 0)
    if smp == "" then smp = t:get("sample") or "" end
  end
  local e = summary.errors
  io.write(string.format(
    'RESULT {"requests":%d,"duration_us":%d,"p50_us":%d,"p99_us":%d,"p999_us":%d,"max_us":%d,' ..
    '"err_connect":%d,"err_read":%d,"err_write":%d,"err_timeout":%d,"bad_status":%d,' ..
    '"rpc_error":%d,"tool_error":%d,"sample":%s}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    latency:percentile(99.9), latency.max, e.connect, e.read, e.write, e.timeout, bs, re, te,
    jsonstr(smp)))
end
