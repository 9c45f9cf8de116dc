-- balance.lua: GET /api/users/{id}/balance with user tokens.
-- Data file lines: userId <TAB> token.
--   wrk ... -s balance.lua URL -- threads=2 data=users.tsv
local dir = string.match(debug.getinfo(1, "S").source, "^@(.*/)") or "./"
dofile(dir .. "lib.lua")
name = "balance"
expected = {}

function request()
   local r = cycle(rows)
   return wrk.format("GET", "/api/users/" .. r[1] .. "/balance",
                     { ["Authorization"] = "Bearer " .. r[2] })
end
