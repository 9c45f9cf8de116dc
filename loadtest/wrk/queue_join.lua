-- queue_join.lua: POST /api/queues/token by users who have not joined yet.
--
-- Request k of the run (threads interleave) is the pair
--   user = base + floor(k / concerts), concert = k % concerts + 1
-- so every request is a new place in a queue, never a rejoin, until
-- users run out (then it starts over at base: rejoins, counted as wraps).
--   wrk ... -s queue_join.lua URL -- threads=2 base=42001 users=100000 concerts=10
local dir = string.match(debug.getinfo(1, "S").source, "^@(.*/)") or "./"
dofile(dir .. "lib.lua")
name = "queue_join"
expected = {}

local headers = { ["Content-Type"] = "application/json" }
local base, users, concerts, pairs_n

function init_data(o)
   base = tonumber(o.base or "1")
   users = tonumber(o.users or "100000")
   concerts = tonumber(o.concerts or "1")
   pairs_n = (users - base + 1) * concerts
end

function request()
   local k = tid + sent * opt.threads
   sent = sent + 1
   if k >= pairs_n then
      wraps = wraps + 1
      k = k % pairs_n
   end
   local user = base + math.floor(k / concerts)
   local concert = k % concerts + 1
   local body = string.format(
      '{"concertId":%d,"userId":"00000000-0000-4000-8000-%012d"}', concert, user)
   return wrk.format("POST", "/api/queues/token", headers, body)
end
