-- queue_status.lua: GET /api/queues/status with queue tokens from a file
-- (one token per line, made by loadtest/bench from real joins).
--   wrk ... -s queue_status.lua URL -- threads=2 data=tokens.tsv
local dir = string.match(debug.getinfo(1, "S").source, "^@(.*/)") or "./"
dofile(dir .. "lib.lua")
name = "queue_status"
expected = {}

function request()
   -- Tokens are reused (polling is what clients repeat): no wrap counting.
   local r = cycle(rows)
   return wrk.format("GET", "/api/queues/status", { ["Authorization"] = "Bearer " .. r[1] })
end
