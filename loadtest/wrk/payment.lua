-- payment.lua: POST /api/payments of seats held before the run.
-- Data file lines: ACTIVE token <TAB> reservationId (one hold per token:
-- a payment ends the token's turn). Each request has its own
-- Idempotency-Key. 402 INSUFFICIENT_BALANCE is an expected outcome; past
-- the end of the data a payment is refused (401 TOKEN_REVOKED), so the
-- bench prepares more holds than the run can pay (see `wraps`).
--   wrk ... -s payment.lua URL -- threads=2 data=payments.tsv run=RUNID
local dir = string.match(debug.getinfo(1, "S").source, "^@(.*/)") or "./"
dofile(dir .. "lib.lua")
name = "payment"
expected = { [402] = true }

function request()
   local r = pick(rows, sent)
   sent = sent + 1
   return wrk.format("POST", "/api/payments",
                     { ["Authorization"] = "Bearer " .. r[1],
                       ["Content-Type"] = "application/json",
                       ["Idempotency-Key"] = string.format("pay-%s-%d-%d",
                                                           opt.run or "0", tid, sent) },
                     '{"reservationId":"' .. r[2] .. '"}')
end
