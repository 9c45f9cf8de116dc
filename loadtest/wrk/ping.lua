-- ping.lua: GET /api/ping, the baseline (touches no server behind the worker).
--   wrk -t2 -c64 -d10s -s ping.lua http://127.0.0.1:8080 -- threads=2
local dir = string.match(debug.getinfo(1, "S").source, "^@(.*/)") or "./"
dofile(dir .. "lib.lua")
name = "ping"
expected = {}

function request()
   sent = sent + 1
   return wrk.format("GET", "/api/ping")
end
