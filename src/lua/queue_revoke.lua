-- queue_revoke.lua: end the user's turn after payment; 1 if it ended. A
-- later turn of the same user (another queue number) is left alone.

local active, num = KEYS[1], KEYS[2]
local user, number = ARGV[1], ARGV[2]

local n = redis.call('HGET', num, user)
if not n or n ~= number then return 0 end
return redis.call('ZREM', active, user)
