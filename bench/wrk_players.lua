-- wrk script: each wrk thread cycles over its own slice of player tokens, so no two
-- threads drive the same player at once. Set by bench/play.py through env vars:
--   BENCH_TOKENS (comma separated), BENCH_METHOD, BENCH_PATH, BENCH_BODY
local tokens = {}
for t in string.gmatch(os.getenv("BENCH_TOKENS") or "", "[^,]+") do tokens[#tokens + 1] = t end
local method = os.getenv("BENCH_METHOD") or "GET"
local path = os.getenv("BENCH_PATH") or "/health"
local body = os.getenv("BENCH_BODY")
local threads = {}
local next_id = 0

function setup(thread)
  thread:set("id", next_id)
  next_id = next_id + 1
  threads[#threads + 1] = thread
end

function init(args)
  counter = 0
  mine = {}
  local n = tonumber(os.getenv("BENCH_THREADS") or "1")
  for i = 1, #tokens do
    if (i - 1) % n == id then mine[#mine + 1] = tokens[i] end
  end
end

function request()
  counter = counter + 1
  local token = mine[(counter % #mine) + 1]
  local headers = {["Authorization"] = "Bearer " .. token}
  if body then headers["Content-Type"] = "application/json" end
  return wrk.format(method, path, headers, body)
end

function done(summary, latency, requests)
  local errors = summary.errors.status + summary.errors.connect + summary.errors.read
    + summary.errors.write + summary.errors.timeout
  io.write(string.format(
    'BENCH {"requests": %d, "seconds": %.3f, "p50_ms": %.3f, "p95_ms": %.3f, "p99_ms": %.3f, "errors": %d}\n',
    summary.requests, summary.duration / 1e6, latency:percentile(50) / 1000,
    latency:percentile(95) / 1000, latency:percentile(99) / 1000, errors))
end
