-- seats.lua: GET /api/concerts/{c}/schedules/{s}/seats with ACTIVE tokens.
-- Data file lines: token <TAB> concertId <TAB> scheduleId (the token's
-- concert and one of its schedules).
--   wrk ... -s seats.lua URL -- threads=2 data=seats.tsv
local dir = string.match(debug.getinfo(1, "S").source, "^@(.*/)") or "./"
dofile(dir .. "lib.lua")
name = "seats"
expected = {}

function request()
   -- Tokens are reused (a seat map changes nothing): no wrap counting.
   local r = cycle(rows)
   return wrk.format("GET", "/api/concerts/" .. r[2] .. "/schedules/" .. r[3] .. "/seats",
                     { ["Authorization"] = "Bearer " .. r[1] })
end
