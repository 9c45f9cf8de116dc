-- queue_join.lua: join a concert's queue, or find the user's live place
-- (after queue_prologue.lua).
--
-- The concert's sale state is cached next to its queue (sale_key, not
-- part of the queue itself): on a miss the caller reads it from the
-- database and calls again with it (given_sale), which stores it for
-- sale_ttl_ms; use_cached_sale '1' lets a cached state answer. A user
-- Redis has not seen before is first confirmed in the database by the
-- caller, then joined with verified '1', which remembers them in the
-- known-users set. Before the sale opens a join is a place in the
-- pre-queue (no number yet); after it closes joins are refused.
-- Replies: {'SALE'} (state unknown), {'SALE', phase, cached} (not on sale,
-- closed or no such concert), {'UNKNOWN', cached}, {'DRAW'} (the
-- pre-queue is to be drawn: call again with a seed), or the place
-- followed by fresh (1: a new place), cached (1: the sale state came from
-- Redis) and the opening (ms, 0 if none).

local phase, opens, cached = sale_phase()
if not phase then return {'SALE'} end
if phase ~= 'o' and phase ~= 'u' then return {'SALE', phase, cached} end
if verified == '1' then redis.call('SADD', known_users, user)
elseif redis.call('SISMEMBER', known_users, user) == 0 then return {'UNKNOWN', cached} end
if phase == 'u' and redis.call('EXISTS', seed) == 0 then
  -- before the opening: arrival order, which the draw will forget
  local fresh = redis.call('ZADD', pre, 'NX', redis.call('ZCARD', pre) + 1, user)
  return {0, 'PRE_QUEUE', 0, 0, now, 0, 0, fresh, cached, opens}
end
if not drawn() then return {'DRAW'} end
admit(false)
local p
local n = redis.call('HGET', num, user)
if n then
  n = tonumber(n)
  local a = redis.call('ZSCORE', active, user)
  if a and tonumber(a) <= now then
    -- a turn that has run out, not yet tidied by admit(): it is over
    redis.call('ZREM', active, user)
    redis.call('HINCRBY', stats, 'expired', 1)
  else
    p = place(n)
    if p[2] == 'EXPIRED' then p = nil end
  end
  if p then p[8] = 0; p[9] = cached; p[10] = opens; return p end
end
-- a new place, at the back of the queue
n = redis.call('INCR', seq)
redis.call('HSET', num, user, n)
redis.call('HINCRBY', stats, 'joined', 1)
local room = redis.call('ZCARD', active) + redis.call('ZCARD', claim) < max_active
if room and redis.call('EXISTS', wait) == 0
   and redis.call('ZCOUNT', admits, now - 999, '+inf') < per_sec then
  -- nobody waiting and room: straight in, admitted and claimed at once
  redis.call('ZADD', active, now + ttl_ms, user)
  redis.call('ZADD', admits, now, n)
  redis.call('HINCRBY', stats, 'admitted', 1)
  -- the newest number is the highest given, so the highest admitted
  redis.call('SET', served, n)
  p = {n, 'ACTIVE', 0, now + ttl_ms, now, 0, 0}
else
  redis.call('ZADD', wait, n, user)
  if room then
    -- others wait too: admission in order, which may reach this one
    admit(true)
    p = place(n)
  else
    -- the newest number is the last in the queue
    p = waiting(n, redis.call('ZCARD', wait) - 1)
  end
end
p[8] = 1; p[9] = cached; p[10] = opens
return p
