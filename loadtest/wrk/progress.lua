-- progress.lua: GET /api/queues/{id}/progress, cycling over a few concerts
-- (public; nginx keeps each concert's document one second, so nearly
-- every answer is a cache hit and the workers see about one request per
-- second per concert).
--   wrk ... -s progress.lua URL -- threads=2 concerts=4
local dir = string.match(debug.getinfo(1, "S").source, "^@(.*/)") or "./"
dofile(dir .. "lib.lua")
name = "progress"
expected = {}

function request()
   return wrk.format("GET", "/api/queues/" .. next_concert() .. "/progress")
end
