-- signin_fail.lua: count one failed sign-in on each counter in KEYS (the
-- account's, the client address's). A counter's window, ARGV[1] seconds,
-- starts with its first failure, so a steady trickle cannot keep it alive
-- for ever. Returns the highest count.

local window = tonumber(ARGV[1])
local most = 0
for _, k in ipairs(KEYS) do
  local n = redis.call('INCR', k)
  if n == 1 then redis.call('EXPIRE', k, window) end
  if n > most then most = n end
end
return most
