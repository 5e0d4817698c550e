-- wrk script for benches/callback_load.sh. CB_REQS names a file of `path?query<TAB>body`
-- lines (examples/make_callback_requests.rs). One line: its body's @ID@ becomes a
-- per-request id, so no request is a retry of another. Many lines: each thread takes
-- every nth line, so every request is a distinct, separately signed message until the
-- file runs out (then requests repeat and are answered from the dedupe record; done()
-- says how many).
local reqs = {}
for line in io.lines(os.getenv("CB_REQS")) do
  local tab = line:find("\t", 1, true)
  reqs[#reqs + 1] = { line:sub(1, tab - 1), line:sub(tab + 1) }
end

local nthreads = tonumber(os.getenv("CB_THREADS") or "2")
local next_tid = 0
function setup(thread)
  thread:set("tid", next_tid)
  next_tid = next_tid + 1
end

local n = 0
local headers = { ["Content-Type"] = "text/xml" }
function request()
  local path, body
  if #reqs == 1 then
    path = reqs[1][1]
    body = reqs[1][2]:gsub("@ID@", tostring(tid * 1000000000 + n), 1)
  else
    local r = reqs[((tid + n * nthreads) % #reqs) + 1]
    path, body = r[1], r[2]
  end
  n = n + 1
  return wrk.format("POST", path, headers, body)
end

function done(summary, latency, requests)
  local secs = summary.duration / 1e6
  local repeated = 0
  if #reqs > 1 and summary.requests > #reqs then repeated = summary.requests - #reqs end
  io.write(string.format(
    "RESULT requests=%d rps=%.0f p50_ms=%.2f p90_ms=%.2f p99_ms=%.2f max_ms=%.2f non2xx=%d socket_errors=%d repeated=%d\n",
    summary.requests, summary.requests / secs,
    latency:percentile(50) / 1000, latency:percentile(90) / 1000,
    latency:percentile(99) / 1000, latency.max / 1000,
    summary.errors.status,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    repeated))
end
