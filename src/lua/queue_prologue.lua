-- queue_prologue.lua: the start of the join and poll scripts (queue.c
-- runs each as this file followed by queue_join.lua or queue_poll.lua).
--
-- admit(): expiry of ACTIVE turns, abandonment of waiters who stopped
-- polling, then admission in queue order within max_active and
-- admit_per_second. Every join and poll runs admit(), so the queue moves
-- without a scheduler and no number of pollers can admit past capacity:
-- scripts run one at a time.
-- Admission work is done at most every 50 ms per concert (a poll in
-- between only reads), so a crowd of pollers costs Redis little, and at
-- most 1,000 people are admitted in one step, so no step stalls Redis.
-- Waiters' last polls are kept minus the "pause" credit: when nobody could
-- poll for half the abandonment time (Redis or the workers down,
-- maintenance), the credit grows by the pause, which stops every waiter's
-- clock for it in O(1).

-- The queue's parts in the order of keys_parts[] (src/keys.c), then the
-- known users and the concert's cached sale state. Each script uses some.
-- luacheck: push no unused
local seq, num, wait, seen, active, admits, stats, pause, tick, served, known_users, sale_key =
  unpack(KEYS)
-- The settings (queue_configure()), then the request.
local max_active, per_sec = tonumber(ARGV[1]), tonumber(ARGV[2])
local ttl_ms, abandon_ms = tonumber(ARGV[3]), tonumber(ARGV[4])
local user, number, verified = ARGV[5], tonumber(ARGV[6]), ARGV[7]
local given_sale, sale_ttl_ms, use_cached_sale = ARGV[8], ARGV[9], ARGV[10]
-- luacheck: pop

local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local credit = tonumber(redis.call('GET', pause) or '0')

local function admit(force)
  local last = tonumber(redis.call('GET', tick) or '0')
  if not force and now - last < 50 then return end
  redis.call('SET', tick, now)
  if last > 0 and now - last > abandon_ms / 2 then
    credit = credit + now - last
    redis.call('SET', pause, credit)
  end
  local n = redis.call('ZREMRANGEBYSCORE', active, '-inf', now)
  if n > 0 then redis.call('HINCRBY', stats, 'expired', n) end
  local gone = redis.call('ZRANGEBYSCORE', seen, '-inf', now - credit - abandon_ms, 'LIMIT', 0, 500)
  for _, u in ipairs(gone) do
    redis.call('ZREM', wait, u); redis.call('ZREM', seen, u); redis.call('HDEL', num, u)
  end
  if #gone > 0 then redis.call('HINCRBY', stats, 'abandoned', #gone) end
  redis.call('ZREMRANGEBYSCORE', admits, '-inf', now - 60000)
  local k = math.min(max_active - redis.call('ZCARD', active),
                    per_sec - redis.call('ZCOUNT', admits, now - 999, '+inf'), 1000)
  if k <= 0 then return end
  local nxt = redis.call('ZPOPMIN', wait, k)
  for i = 1, #nxt, 2 do
    redis.call('ZADD', active, now + ttl_ms, nxt[i])
    redis.call('ZREM', seen, nxt[i])
    redis.call('ZADD', admits, now, nxt[i + 1])
  end
  if #nxt > 0 then
    redis.call('HINCRBY', stats, 'admitted', #nxt / 2)
    -- ZPOPMIN gives the lowest numbers first: the last is the highest
    local top = tonumber(nxt[#nxt])
    if top > tonumber(redis.call('GET', served) or '0') then redis.call('SET', served, top) end
  end
end

-- a waiter r places from the front: this counts as their poll
local function waiting(n, r)
  redis.call('ZADD', seen, now - credit, user)
  -- admissions over the last minute, for the estimated wait
  local cnt = redis.call('ZCARD', admits)
  local first = redis.call('ZRANGE', admits, 0, 0, 'WITHSCORES')
  local span = 0
  if #first > 0 then span = now - tonumber(first[2]) end
  return {n, 'WAITING', r, 0, now, cnt, span}
end

local function place(n)
  local a = redis.call('ZSCORE', active, user)
  if a and tonumber(a) > now then return {n, 'ACTIVE', 0, tonumber(a), now, 0, 0} end
  local r = redis.call('ZRANK', wait, user)
  if not r then return {n, 'EXPIRED', 0, 0, now, 0, 0} end
  return waiting(n, r)
end
