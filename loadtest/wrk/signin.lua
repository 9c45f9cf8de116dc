-- signin.lua: POST /api/sessions with the demo accounts, one after another
-- (user<i>@demo.boxoffice.test and the demo password, i from 1 to users).
-- 503 BUSY is the sign-in gate turning a request away at once while
-- auth.hash_concurrency workers hash: an expected outcome, counted apart.
--   wrk ... -s signin.lua URL -- threads=2 users=100000
local dir = string.match(debug.getinfo(1, "S").source, "^@(.*/)") or "./"
dofile(dir .. "lib.lua")
name = "signin"
expected = { [503] = true }

local users

function init_data(o)
   users = tonumber(o.users or "1000")
end

function request()
   local i = (tid + sent * opt.threads) % users + 1
   sent = sent + 1
   return wrk.format("POST", "/api/sessions", { ["Content-Type"] = "application/json" },
                     string.format('{"email":"user%d@demo.boxoffice.test",' ..
                                   '"password":"boxoffice-demo"}', i))
end
