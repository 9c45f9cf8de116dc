-- queue_poll.lua: the place of the user's queue number (after
-- queue_prologue.lua); an admitted turn is claimed by it. Number 0 is a
-- pre-queue place: before the draw it answers PRE_QUEUE (which needs the
-- sale state, as for the join), after it the number drawn for the user.
-- Replies as queue_join.lua's, without fresh and cached.

if number == 0 then
  local phase, opens = sale_phase()
  if not phase then return {'SALE'} end
  if redis.call('ZSCORE', pre, user) == false then
    return {0, 'EXPIRED', 0, 0, now, 0, 0, 0, 0, opens}
  end
  if phase == 'u' and redis.call('EXISTS', seed) == 0 then
    return {0, 'PRE_QUEUE', 0, 0, now, 0, 0, 0, 0, opens}
  end
  if not drawn() then return {'DRAW'} end
  admit(false)
  local n = redis.call('HGET', num, user)
  if not n or tonumber(redis.call('ZSCORE', draw, user) or '-1') ~= tonumber(n) then
    return {0, 'EXPIRED', 0, 0, now, 0, 0, 0, 0, opens}
  end
  local p = place(tonumber(n))
  p[8] = 0; p[9] = 0; p[10] = opens
  return p
end
admit(false)
local n = redis.call('HGET', num, user)
if not n or tonumber(n) ~= number then
  return {number, 'EXPIRED', 0, 0, now, 0, 0, 0, 0, 0}
end
local p = place(tonumber(n))
p[8] = 0; p[9] = 0; p[10] = 0
return p
