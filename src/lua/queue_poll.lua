-- queue_poll.lua: the place of the user's queue number, which counts as
-- their poll (after queue_prologue.lua).

admit(false)
local n = redis.call('HGET', num, user)
if not n or tonumber(n) ~= number then
  return {number, 'EXPIRED', 0, 0, now, 0, 0}
end
return place(tonumber(n))
