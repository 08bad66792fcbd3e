-- taskgen.lua - wrk request generator for bench/benches/tasks.py: POSTs task number
-- start, start+1, ... with the same bodies as bench/lib/taskgen.py's task(i, now) (keep the
-- two in step: same MINSTD generator, same draws in the same order). The settings come from
-- the TASKGEN table the generated wrapper script defines before loading this file.
-- Run with -t1: the task counter lives in the one thread's Lua state.

local G = TASKGEN
local P, A, DAY = 2147483647, 48271, 86400
local fmod, floor = math.fmod, math.floor
local concat = table.concat

local x = 0
local function nxt()
  x = fmod(x * A, P)
  return x
end

local function pick(list) return list[fmod(nxt(), #list) + 1] end

local function body(i)
  x = fmod(i, P - 1) + 1
  nxt(); nxt(); nxt()
  local words = {}
  local n = 3 + fmod(nxt(), 4)
  for k = 1, n do words[k] = pick(G.vocab) end
  if fmod(nxt(), 20) == 0 then words[#words + 1] = G.common end
  if fmod(nxt(), 5000) == 0 then words[#words + 1] = G.rare end
  local priority = G.priorities[fmod(nxt(), 4) + 1]
  local tags, seen = {}, {}
  local ntags = fmod(nxt(), 4)
  for _ = 1, ntags do
    local t = pick(G.tags)
    if not seen[t] then seen[t] = true; tags[#tags + 1] = '"' .. t .. '"' end
  end
  local has_due = fmod(nxt(), 5) ~= 0
  local due = G.now - 30 * DAY + fmod(nxt(), 120 * DAY)
  due = due - fmod(due, 60)
  local has_desc = fmod(nxt(), 10) < 3
  local parts = {'{"title":"', concat(words, " "), '","tags":[', concat(tags, ","),
                 '],"priority":"', priority, '"'}
  if has_due then parts[#parts + 1] = ',"due":"' .. os.date("!%Y-%m-%dT%H:%M:%SZ", due) .. '"' end
  if has_desc then
    local d = {}
    for k = 1, 8 do d[k] = pick(G.vocab) end
    parts[#parts + 1] = ',"description":"' .. concat(d, " ") .. '"'
  end
  parts[#parts + 1] = G.extra
  parts[#parts + 1] = "}"
  return concat(parts)
end

-- wrk calls request() once before the run, in the first thread's state, to check the script
-- (script_verify_request); that request is never sent. Starting one below `start` makes the
-- first task actually sent number `start`.
local counter = G.start - 1
local answered = 0
local idle = nil -- built on first use: wrk.headers.Host is not set yet while this file loads

function request()
  if G.limit and counter >= G.limit then
    idle = idle or wrk.format("GET", G.idle_path, G.headers)
    return idle
  end
  local b = body(math.max(counter, 0))
  counter = counter + 1
  return wrk.format("POST", G.path, G.headers, b)
end

if G.limit then
  -- Only with a limit (loading): counting answers costs a Lua call per response.
  function delay()
    if counter >= G.limit then return 1000 end
    return 0
  end

  function response(status, headers, b)
    if status == G.create_status or status >= 400 then answered = answered + 1 end
    if answered >= G.limit - G.start then
      if G.marker then
        local f = io.open(G.marker, "w")
        f:write(string.format("answered %d\n", answered))
        f:close()
      end
      wrk.thread:stop()
    end
  end
end
