-- queue_active.lua: when the user's turn ends (Unix ms), 0 if it is not
-- active. The token's queue number must still be the user's, or a token
-- from an earlier turn would count for a later one.

local active, num = KEYS[1], KEYS[2]
local user, number = ARGV[1], ARGV[2]

local n = redis.call('HGET', num, user)
if not n or n ~= number then return 0 end
return tonumber(redis.call('ZSCORE', active, user) or '0')
