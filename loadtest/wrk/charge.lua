-- charge.lua: POST /api/users/{id}/balance/charge with user tokens, a new
-- Idempotency-Key on every request (so every request moves money).
-- Data file lines: userId <TAB> token.
--   wrk ... -s charge.lua URL -- threads=2 data=users.tsv run=RUNID amount=1000
local dir = string.match(debug.getinfo(1, "S").source, "^@(.*/)") or "./"
dofile(dir .. "lib.lua")
name = "charge"
expected = {}

local body

function init_data(o)
   body = '{"amount":' .. (o.amount or "1000") .. '}'
end

function request()
   -- Users are reused (each charge has its own key): no wrap counting.
   local r = cycle(rows)
   return wrk.format("POST", "/api/users/" .. r[1] .. "/balance/charge",
                     { ["Authorization"] = "Bearer " .. r[2],
                       ["Content-Type"] = "application/json",
                       ["Idempotency-Key"] = string.format("chg-%s-%d-%d",
                                                           opt.run or "0", tid, sent) },
                     body)
end
