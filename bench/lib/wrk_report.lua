-- Loaded by bench/lib/wrk.py with `wrk -s`. Only done() is defined, so wrk keeps its static,
-- pre-built request (no Lua on the request path). It prints one machine-readable line with
-- exact figures: latency in microseconds from wrk's histogram, and the error counters.
done = function(summary, latency, requests)
  local e = summary.errors
  io.write("WRK_REPORT {")
  io.write(string.format('"duration_us":%d,"requests":%d,"bytes":%d,',
    summary.duration, summary.requests, summary.bytes))
  io.write(string.format('"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},',
    e.connect, e.read, e.write, e.status, e.timeout))
  io.write(string.format('"latency_us":{"min":%d,"max":%d,"mean":%.2f,"stdev":%.2f',
    latency.min, latency.max, latency.mean, latency.stdev))
  for _, p in ipairs({50, 75, 90, 99, 99.9, 99.99}) do
    io.write(string.format(',"p%s":%d', tostring(p), latency:percentile(p)))
  end
  io.write("}}\n")
end
