-- cluster_mix.lua - tests/load/mix.lua (the realistic tool mix, loaded unchanged) plus, for the
-- cluster test, a record of every failed request: "<unix second> <kind>" lines, so that
-- tests/cluster/run.py can put each error into the event window (host killed, Redis failover)
-- it belongs to. Kinds: the HTTP status (404 = session unknown, 502/503/504 = HAProxy or a
-- worker without Redis), rpc (JSON-RPC error), tool (isError result). Socket errors are only
-- counted by wrk (connect/read/write/timeout) and reported as such.
-- Environment: BENCH_MIX = path of tests/load/mix.lua, plus everything mix.lua reads.
dofile(os.getenv("BENCH_MIX"))

local mythreads = {}
local base_setup = setup
setup = function(thread)
  base_setup(thread)
  table.insert(mythreads, thread)
end

errlog = ""
local base_response = response

response = function(status, hdrs, body)
  local kind = nil
  if status ~= 200 then
    kind = tostring(status)
  elseif string.find(body, '"error":{', 1, true) and not string.find(body, '"result"', 1, true) then
    kind = "rpc"
  elseif string.find(body, '"isError":true', 1, true) then
    kind = "tool"
  end
  if kind and #errlog < 400000 then
    -- the start of the body says who answered (HAProxy's own 50x page or a worker's JSON)
    local b = string.gsub(string.sub(body or "", 1, 160), "[%c]", " ")
    errlog = errlog .. os.time() .. " " .. kind .. " " .. b .. "\n"
  end
  base_response(status, hdrs, body)
end

local base_done = done
done = function(summary, latency, requests)
  base_done(summary, latency, requests)
  for _, t in ipairs(mythreads) do
    io.write("ERRLOG\n" .. (t:get("errlog") or "") .. "ENDERRLOG\n")
  end
end
