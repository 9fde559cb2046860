-- wrk script for benches/load.sh: POSTs the 20-line 2204 printed by `examples/load_envelope.rs`,
-- each request for the next registered visit, with a fresh msgid and fresh feedetl_sn, and counts
-- answers that are not HTTP 200 with infcode 0 (a benchmark of error answers measures nothing).
-- Environment: LOAD_BODY (template file), LOAD_VISITS (file of "mdtrt_id psn_no" lines),
-- LOAD_TAG (unique per run, keeps msgids unique), LOAD_DELAY_MS (per-connection pause; 0 = none),
-- LOAD_START (where in the visit list this run starts) and LOAD_STATE (a file where done() writes
-- where the next run starts): the runs against one target walk the visits in turn, so no visit gets
-- another upload before all the others have had one (the per-day and per-visit rules see them all).
local threads = {}
counter = 0 -- global: done() reads it from each thread
local start = tonumber(os.getenv("LOAD_START") or "0")
local nthreads = tonumber(os.getenv("LOAD_THREADS") or "2")
bad = 0 -- global: done() reads it from each thread with thread:get
local visits = {}
local body_tpl
local tag
local delay_ms = tonumber(os.getenv("LOAD_DELAY_MS") or "0")

function setup(thread)
  thread:set("tid", #threads)
  table.insert(threads, thread)
end

function init(args)
  local f = assert(io.open(os.getenv("LOAD_BODY")))
  body_tpl = f:read("*a")
  f:close()
  for line in io.lines(os.getenv("LOAD_VISITS")) do
    local v, p = line:match("(%S+)%s+(%S+)")
    if v then visits[#visits + 1] = { v, p } end
  end
  tag = os.getenv("LOAD_TAG") .. tid
  wrk.method = "POST"
  wrk.path = "/fsi/api/rsfComIfsService/callService"
  wrk.headers["Content-Type"] = "application/json"
end

function request()
  counter = counter + 1
  local v = visits[(start + (counter - 1) * nthreads + tid) % #visits + 1]
  local sn = string.format("%s%07d", tag, counter)
  local body = body_tpl:gsub("@VISIT@", v[1]):gsub("@PSN@", v[2]):gsub("@MSG@", "H410701000012025" .. sn):gsub("@SN@", sn)
  return wrk.format(nil, nil, nil, body)
end

if delay_ms > 0 then
  function delay()
    return delay_ms
  end
end

function response(status, headers, body)
  if status ~= 200 or not body:find('"infcode":0', 1, true) then
    bad = bad + 1
  end
end

function done(summary, latency, requests)
  local b = 0
  for _, t in ipairs(threads) do
    b = b + t:get("bad")
  end
  local used = 0
  for _, t in ipairs(threads) do
    used = math.max(used, t:get("counter"))
  end
  local state = os.getenv("LOAD_STATE")
  if state then
    local f = assert(io.open(state, "w"))
    f:write(string.format("%d\n", start + used * #threads))
    f:close()
  end
  local e = summary.errors
  io.write(string.format("RESULT requests=%d seconds=%.2f rps=%.0f p50_ms=%.3f p99_ms=%.3f p999_ms=%.3f max_ms=%.3f socket_errors=%d bad_answers=%d\n",
    summary.requests, summary.duration / 1e6, summary.requests / (summary.duration / 1e6),
    latency:percentile(50) / 1e3, latency:percentile(99) / 1e3, latency:percentile(99.9) / 1e3, latency.max / 1e3,
    e.connect + e.read + e.write + e.timeout, b))
end
