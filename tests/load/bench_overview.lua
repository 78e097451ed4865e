-- bench_overview.lua - wrk script: keep-alive POST /mcp tools/call get_client_overview over the
-- seeded accounts demo_00001 .. demo_<BENCH_ACCOUNTS>, a different account per request.
--
-- Environment (set by bench_overview.py):
--   BENCH_SESSIONS  file with one initialized Mcp-Session-Id per line (thread t starts at t)
--   BENCH_ACCOUNTS  number of seeded accounts (default 10000)
-- A response counts as an error when its status is not 200 or its body is not a successful
-- result. done() prints one line "RESULT {json}" that bench_overview.py parses.

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
local accounts = 10000
local headers = {}
bad_status = 0
bad_body = 0

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
  accounts = tonumber(os.getenv("BENCH_ACCOUNTS") or "10000")
  math.randomseed(1000 + tid)
  headers["Content-Type"] = "application/json"
  headers["Accept"] = "application/json, text/event-stream"
  headers["MCP-Protocol-Version"] = "2025-11-25"
end

function request()
  seq = seq + 1
  if #sessions > 0 then
    headers["Mcp-Session-Id"] = sessions[idx]
    idx = idx + 1
    if idx > #sessions then idx = 1 end
  end
  local body = string.format(
    '{"jsonrpc":"2.0","id":%d,"method":"tools/call","params":{"name":"get_client_overview",' ..
    '"arguments":{"client_id":"demo_%05d"}}}', tid * 100000000 + seq, math.random(1, accounts))
  return wrk.format("POST", "/mcp", headers, body)
end

function response(status, hdrs, body)
  if status ~= 200 then
    bad_status = bad_status + 1
  elseif not string.find(body, '"result"', 1, true) or string.find(body, '"isError":true', 1, true) then
    bad_body = bad_body + 1
  end
end

function done(summary, latency, requests)
  local bs, bb = 0, 0
  for _, t in ipairs(threads) do
    bs = bs + (t:get("bad_status") or 0)
    bb = bb + (t:get("bad_body") or 0)
  end
  local e = summary.errors
  io.write(string.format(
    'RESULT {"requests":%d,"duration_us":%d,"p50_us":%d,"p99_us":%d,"max_us":%d,' ..
    '"err_connect":%d,"err_read":%d,"err_write":%d,"err_timeout":%d,"bad_status":%d,"bad_body":%d}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    latency.max, e.connect, e.read, e.write, e.timeout, bs, bb))
end
