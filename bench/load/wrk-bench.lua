-- wrk script of the bench: every request carries X-CSRF: 1; with a cookie file (one Cookie header value per
-- line) each request takes the next cookie, so the load is spread over every session. done() prints one JSON line.
local cookies = {}
local next_cookie = 0
local headers = { ["X-CSRF"] = "1" }

function init(args)
  local file = args[1]
  if file ~= nil and file ~= "" then
    for line in io.lines(file) do
      if line ~= "" then cookies[#cookies + 1] = line end
    end
  end
  -- Threads (and runs) start at different places in the list.
  if #cookies > 0 then next_cookie = math.random(0, #cookies - 1) end
end

function request()
  if #cookies > 0 then
    next_cookie = next_cookie % #cookies + 1
    headers["Cookie"] = cookies[next_cookie]
  end
  return wrk.format(nil, nil, headers)
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests":%d,"durationUs":%d,"connectErrors":%d,"readErrors":%d,"writeErrors":%d,"timeouts":%d,"non2xx":%d,"p50Us":%.1f,"p99Us":%.1f,"meanUs":%.1f}\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.timeout, e.status,
    latency:percentile(50), latency:percentile(99), latency.mean))
end
