-- schedules.lua: GET /api/concerts/{id}/schedules, cycling over the concerts
-- (public, cached: worker memory, then Redis, then the replica).
--   wrk ... -s schedules.lua URL -- threads=2 concerts=10
local dir = string.match(debug.getinfo(1, "S").source, "^@(.*/)") or "./"
dofile(dir .. "lib.lua")
name = "schedules"
expected = {}

local concerts

function init_data(o)
   concerts = tonumber(o.concerts or "1")
end

function request()
   local c = (tid + sent * opt.threads) % concerts + 1
   sent = sent + 1
   return wrk.format("GET", "/api/concerts/" .. c .. "/schedules")
end
