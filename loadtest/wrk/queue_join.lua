-- queue_join.lua: POST /api/queues/token by users who have not joined yet.
-- Data file lines: userId <TAB> user token (signed before the run: a join
-- needs a signed-in user, and the user is the token's).
--
-- Request k of the run (threads interleave) is the pair
--   user = row floor(k / concerts) + 1, concert = k % concerts + 1
-- so every request is a new place in a queue, never a rejoin, until
-- users run out (then it starts over at the first row: rejoins, counted
-- as wraps).
--   wrk ... -s queue_join.lua URL -- threads=2 data=join.tsv concerts=10
local dir = string.match(debug.getinfo(1, "S").source, "^@(.*/)") or "./"
dofile(dir .. "lib.lua")
name = "queue_join"
expected = {}

local concerts, pairs_n

function init_data(o)
   concerts = tonumber(o.concerts or "1")
   assert(rows, "queue_join.lua needs data=FILE (userId <TAB> token)")
   pairs_n = #rows * concerts
end

function request()
   local k = tid + sent * opt.threads
   sent = sent + 1
   if k >= pairs_n then
      wraps = wraps + 1
      k = k % pairs_n
   end
   local r = rows[math.floor(k / concerts) + 1]
   local concert = k % concerts + 1
   return wrk.format("POST", "/api/queues/token",
                     { ["Content-Type"] = "application/json",
                       ["Authorization"] = "Bearer " .. r[2] },
                     string.format('{"concertId":%d}', concert))
end
