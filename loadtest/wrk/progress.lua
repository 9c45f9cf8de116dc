-- progress.lua: GET /api/queues/{id}/progress, cycling over a few concerts
-- (public; nginx keeps each concert's document one second, so nearly
-- every answer is a cache hit and the workers see about one request per
-- second per concert).
--   wrk ... -s progress.lua URL -- threads=2 concerts=4
local dir = string.match(debug.getinfo(1, "S").source, "^@(.*/)") or "./"
dofile(dir .. "lib.lua")
name = "progress"
expected = {}

local concerts

function init_data(o)
   concerts = tonumber(o.concerts or "1")
end

function request()
   local c = (tid + sent * opt.threads) % concerts + 1
   sent = sent + 1
   return wrk.format("GET", "/api/queues/" .. c .. "/progress")
end
