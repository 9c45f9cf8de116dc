-- lib.lua: what every boxoffice wrk script shares.
--
-- A script sets `name` and `expected` (non-2xx statuses that are a normal
-- outcome, e.g. {[409] = true}), loads this file, and defines
-- `request()` (and `init_data(opt)` for other settings of its own). This
-- file defines wrk's setup/init/response/done:
--
--   * arguments after `--` are key=value pairs: data=FILE (one entry per
--     line, fields separated by tabs; read into the global `rows`),
--     threads=N (wrk's -t, so that threads interleave entries and never
--     send the same one), and whatever the script reads from `opt`;
--   * response() counts answers by status;
--   * done() prints one line "BENCH_JSON {...}" with requests/s, latency
--     percentiles (ms), the answers by status, unexpected errors (non-2xx
--     not in `expected`, plus socket errors and timeouts) and how often a
--     thread ran out of data and started over (`wraps`; its non-2xx
--     answers from then on are `exhausted`, not errors).
--
-- wrk runs the script once in its main Lua state (setup, done) and once
-- in each thread (init, request, response); globals are per state.

local threads = {}
local nthreads_seen = 0

function setup(thread)
   thread:set("tid", nthreads_seen)
   nthreads_seen = nthreads_seen + 1
   table.insert(threads, thread)
end

opt = {}
counts = {}
exhausted = {}
wraps = 0
sent = 0
tid = tid or 0

-- Split s at tabs.
function split_tabs(s)
   local out = {}
   for field in string.gmatch(s, "[^\t]+") do
      out[#out + 1] = field
   end
   return out
end

-- Every line of path, split at tabs; fails loudly on an empty file.
function read_data(path)
   local f = assert(io.open(path, "r"), "cannot open data file " .. tostring(path))
   local rows = {}
   for line in f:lines() do
      if line ~= "" then
         rows[#rows + 1] = split_tabs(line)
      end
   end
   f:close()
   assert(#rows > 0, "data file " .. path .. " is empty")
   return rows
end

-- The i-th (0-based) entry of this thread: threads interleave so no two
-- threads send the same entry; past the end it starts over (counted).
function pick(rows, i)
   local k = tid + i * opt.threads
   if k >= #rows then
      wraps = wraps + 1
      k = k % #rows
   end
   return rows[k + 1]
end

-- The next entry of this thread for data that may be reused as often as
-- needed (tokens for reads and charges): no wraps counted.
function cycle(rows)
   local r = rows[(tid + sent * opt.threads) % #rows + 1]
   sent = sent + 1
   return r
end

-- The next concert of this thread, from 1 to concerts=N (threads
-- interleave), for the public per-concert reads.
function next_concert()
   local c = (tid + sent * opt.threads) % tonumber(opt.concerts or "1") + 1
   sent = sent + 1
   return c
end

function init(args)
   for _, a in ipairs(args) do
      local k, v = string.match(a, "^([%w_]+)=(.*)$")
      if k then opt[k] = v end
   end
   opt.threads = tonumber(opt.threads or "1")
   counts = {}
   exhausted = {}
   wraps = 0
   sent = 0
   if opt.data then rows = read_data(opt.data) end
   if init_data then init_data(opt) end
end

-- Once a thread has run out of data (wraps > 0), its failed answers are
-- most likely to entries used before (a paid reservation, a revoked
-- token): counted apart, as `exhausted`, not as errors.
function response(status, headers, body)
   if wraps > 0 and (status < 200 or status >= 300) then
      exhausted[status] = (exhausted[status] or 0) + 1
      return
   end
   counts[status] = (counts[status] or 0) + 1
end

-- JSON for the flat tables and numbers we print.
local function json_value(v)
   if type(v) == "table" then
      local parts = {}
      for k, x in pairs(v) do
         parts[#parts + 1] = string.format("%q:%s", tostring(k), json_value(x))
      end
      return "{" .. table.concat(parts, ",") .. "}"
   elseif type(v) == "number" then
      if v ~= v or v == math.huge or v == -math.huge then return "null" end
      if v == math.floor(v) and math.abs(v) < 1e15 then
         return string.format("%d", v)
      end
      return string.format("%.3f", v)
   elseif type(v) == "string" then
      return string.format("%q", v)
   elseif v == nil then
      return "null"
   end
   return tostring(v)
end

function done(summary, latency, requests)
   local statuses, all_wraps, late, late_n = {}, 0, {}, 0
   for _, t in ipairs(threads) do
      local c = t:get("counts") or {}
      for status, n in pairs(c) do
         statuses[status] = (statuses[status] or 0) + n
      end
      for status, n in pairs(t:get("exhausted") or {}) do
         late[tostring(status)] = (late[tostring(status)] or 0) + n
         late_n = late_n + n
      end
      all_wraps = all_wraps + (t:get("wraps") or 0)
   end
   local ok, exp, unexp = 0, 0, 0
   local by_status = {}
   for status, n in pairs(statuses) do
      by_status[tostring(status)] = n
      if status >= 200 and status < 300 then
         ok = ok + n
      elseif expected and expected[status] then
         exp = exp + n
      else
         unexp = unexp + n
      end
   end
   local e = summary.errors
   local socket_errors = e.connect + e.read + e.write + e.timeout
   local secs = summary.duration / 1e6
   local out = {
      name = name or "?",
      requests = summary.requests,
      duration_s = secs,
      rps = summary.requests / secs,
      bytes = summary.bytes,
      latency_ms = {
         mean = latency.mean / 1000, stdev = latency.stdev / 1000,
         max = latency.max / 1000,
         p50 = latency:percentile(50) / 1000,
         p90 = latency:percentile(90) / 1000,
         p99 = latency:percentile(99) / 1000,
      },
      statuses = by_status,
      ok = ok,
      expected = exp,
      unexpected = unexp + socket_errors,
      socket_errors = { connect = e.connect, read = e.read, write = e.write,
                        timeout = e.timeout },
      wraps = all_wraps,
      exhausted = late_n,
      exhausted_statuses = late,
      -- requests/s without the answers to exhausted data
      rps_useful = (summary.requests - late_n) / secs,
   }
   io.write("BENCH_JSON ", json_value(out), "\n")
end

-- Directory of the calling script, for dofile().
function script_dir()
   local src = debug.getinfo(2, "S").source
   return (string.match(src, "^@(.*/)") or "./")
end
