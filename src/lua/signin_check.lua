-- signin_check.lua: is a sign-in throttled? KEYS: failure counters (the
-- account's, the client address's); ARGV[1]: the most failures allowed.
-- Returns the seconds until the longest-lasting counter at the limit
-- ends, 0 if none is at the limit.

local limit = tonumber(ARGV[1])
local wait = 0
for _, k in ipairs(KEYS) do
  local n = tonumber(redis.call('GET', k) or '0')
  if n >= limit then
    local t = redis.call('TTL', k)
    if t < 1 then t = 1 end
    if t > wait then wait = t end
  end
end
return wait
