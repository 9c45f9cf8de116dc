-- reservation.lua: POST /api/reservations, each request a different seat.
-- Data file lines: ACTIVE token <TAB> scheduleId <TAB> seatNumber, every
-- seat once (the bench spreads them over schedules and users). A seat
-- someone already holds answers 409 SEAT_TAKEN, the user's hold limit
-- 409 HOLD_LIMIT: expected outcomes, counted apart from errors.
--   wrk ... -s reservation.lua URL -- threads=2 data=holds.tsv
local dir = string.match(debug.getinfo(1, "S").source, "^@(.*/)") or "./"
dofile(dir .. "lib.lua")
name = "reservation"
expected = { [409] = true }

function request()
   local r = pick(rows, sent)
   sent = sent + 1
   return wrk.format("POST", "/api/reservations",
                     { ["Authorization"] = "Bearer " .. r[1],
                       ["Content-Type"] = "application/json" },
                     '{"scheduleId":' .. r[2] .. ',"seatNumber":' .. r[3] .. '}')
end
