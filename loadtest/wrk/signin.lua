-- signin.lua: POST /api/sessions with the demo accounts, one after another
-- (user<i>@demo.boxoffice.test and the demo password, i from 1 to users).
-- 503 BUSY is the sign-in gate turning a request away at once while
-- auth.hash_concurrency workers hash: an expected outcome, counted apart.
-- Like a real client, a connection turned away waits its Retry-After
-- before it tries again, so "full speed" is as fast as the gate admits
-- sign-ins, not a flood of refusals (a flood is nginx's limit_req's).
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

-- The connection that was just answered is the one delay() schedules.
local backoff_ms = 0
local count = response

function response(status, headers, body)
   if status == 503 then
      backoff_ms = 1000 * (tonumber(headers["Retry-After"]) or 1)
   end
   count(status, headers, body)
end

function delay()
   local d = backoff_ms
   backoff_ms = 0
   return d
end
