-- schedules.lua: GET /api/concerts/{id}/schedules, cycling over the concerts
-- (public, cached: worker memory, then Redis, then the replica).
--   wrk ... -s schedules.lua URL -- threads=2 concerts=10
local dir = string.match(debug.getinfo(1, "S").source, "^@(.*/)") or "./"
dofile(dir .. "lib.lua")
name = "schedules"
expected = {}

function request()
   return wrk.format("GET", "/api/concerts/" .. next_concert() .. "/schedules")
end
