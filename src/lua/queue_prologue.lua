-- queue_prologue.lua: the start of the join, poll and progress scripts
-- (queue.c runs each as this file followed by queue_join.lua,
-- queue_poll.lua or queue_progress.lua).
--
-- admit(): expiry of ACTIVE turns, the drop of admitted turns nobody
-- claimed within claim_ms, then admission in queue order within
-- max_active (claimed plus admitted-but-unclaimed turns) and
-- admit_per_second. Every join, poll and progress read runs admit(), so
-- the queue moves without a scheduler and without anyone polling their
-- own place, and no number of callers can admit past capacity: scripts
-- run one at a time. Its cost is O(admitted + dropped), never O(waiters).
-- Admission work is done at most every 50 ms per concert (a call in
-- between only reads), and at most 1,000 people are admitted or dropped
-- in one step, so no step stalls Redis.
-- When nobody could run admission for over 10 s (or half the claim
-- window), with waiters' pages reading the progress document every few
-- seconds that means Redis or the workers were down, or maintenance: the
-- unclaimed turns' deadlines move by the pause, since nobody could have
-- claimed them meanwhile.
--
-- The pre-queue: before the sale opens, joins are kept by arrival (pre).
-- The first call after the opening that finds it undrawn asks the caller
-- for a given_seed ({'DRAW'}); with it, do_draw() shuffles the pre-queue once
-- (Fisher-Yates, O(n) in this one script), numbers it 1..n and records
-- the given_seed and the drawn order (given_seed, draw). Later joins get n+1...

-- The queue's parts in the order of keys_parts[] (src/keys.c), then the
-- known users and the concert's cached sale state. Each script uses some.
-- luacheck: push no unused
local seq, num, wait, claim, active, admits, stats, tick, served, pre, seed, draw, known_users, sale_key =
  unpack(KEYS)
-- The settings (queue_configure()), then the request.
local max_active, per_sec = tonumber(ARGV[1]), tonumber(ARGV[2])
local ttl_ms, claim_ms = tonumber(ARGV[3]), tonumber(ARGV[4])
local user, number, verified = ARGV[5], tonumber(ARGV[6]), ARGV[7]
local given_sale, sale_ttl_ms, use_cached_sale = ARGV[8], ARGV[9], ARGV[10]
local given_seed = ARGV[11]
-- luacheck: pop

local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)

local function admit(force)
  local last = tonumber(redis.call('GET', tick) or '0')
  if not force and now - last < 50 then return end
  redis.call('SET', tick, now)
  if last > 0 and now - last > math.max(claim_ms / 2, 10000) then
    local open = redis.call('ZRANGE', claim, 0, -1, 'WITHSCORES')
    for i = 1, #open, 2 do
      redis.call('ZADD', claim, tonumber(open[i + 1]) + now - last, open[i])
    end
  end
  local n = redis.call('ZREMRANGEBYSCORE', active, '-inf', now)
  if n > 0 then redis.call('HINCRBY', stats, 'expired', n) end
  local gone = redis.call('ZRANGEBYSCORE', claim, '-inf', now, 'LIMIT', 0, 1000)
  for _, u in ipairs(gone) do
    redis.call('ZREM', claim, u); redis.call('HDEL', num, u)
  end
  if #gone > 0 then redis.call('HINCRBY', stats, 'abandoned', #gone) end
  redis.call('ZREMRANGEBYSCORE', admits, '-inf', now - 60000)
  local k = math.min(max_active - redis.call('ZCARD', active) - redis.call('ZCARD', claim),
                    per_sec - redis.call('ZCOUNT', admits, now - 999, '+inf'), 1000)
  if k <= 0 then return end
  local nxt = redis.call('ZPOPMIN', wait, k)
  for i = 1, #nxt, 2 do
    redis.call('ZADD', claim, now + claim_ms, nxt[i])
    redis.call('ZADD', admits, now, nxt[i + 1])
  end
  if #nxt > 0 then
    redis.call('HINCRBY', stats, 'admitted', #nxt / 2)
    -- ZPOPMIN gives the lowest numbers first: the last is the highest
    local top = tonumber(nxt[#nxt])
    if top > tonumber(redis.call('GET', served) or '0') then redis.call('SET', served, top) end
  end
end

-- The sale state: 'n' no such concert, 'f' not on sale, else
-- 't|opens_ms|closes_ms' (0: no limit on that side). Returns the phase
-- ('n', 'f', 'u' upcoming, 'o' on sale, 'c' closed), the opening (ms, 0
-- if none) and whether it came from Redis; nil when Redis does not have
-- it (the caller reads it from the database and calls again with it).
local function sale_phase()
  local sale, cached = given_sale, 0
  if sale == '' then
    if use_cached_sale == '1' then sale = redis.call('GET', sale_key) end
    if not sale then return nil end
    cached = 1
  elseif tonumber(sale_ttl_ms) > 0 then
    redis.call('SET', sale_key, sale, 'PX', sale_ttl_ms)
  end
  local st = string.sub(sale, 1, 1)
  if st ~= 't' then return st, 0, cached end
  local opens, closes = string.match(sale, '^t|(%d+)|(%d+)$')
  opens, closes = tonumber(opens or '0'), tonumber(closes or '0')
  if opens > 0 and now < opens then return 'u', opens, cached end
  if closes > 0 and now >= closes then return 'c', opens, cached end
  return 'o', opens, cached
end

-- A uniform integer in 1..i from the given_seed: the first 52 bits of
-- SHA-1(given_seed:i:c), c = 0, 1... until one falls below the largest multiple
-- of i (rejection, so no index is favoured). boxofficectl queue audit
-- computes the same in C.
local function pick(i)
  local limit = 4503599627370496 - 4503599627370496 % i
  local c = 0
  while true do
    local x = tonumber(string.sub(redis.sha1hex(given_seed .. ':' .. i .. ':' .. c), 1, 13), 16)
    if x < limit then return x % i + 1 end
    c = c + 1
  end
end

local function do_draw()
  local a = redis.call('ZRANGE', pre, 0, -1)
  local n = #a
  for i = n, 2, -1 do
    local j = pick(i)
    a[i], a[j] = a[j], a[i]
  end
  local base = tonumber(redis.call('GET', seq) or '0')
  for i = 1, n, 500 do
    local h, z = {}, {}
    for k = i, math.min(i + 499, n) do
      h[#h + 1] = a[k]; h[#h + 1] = base + k
      z[#z + 1] = base + k; z[#z + 1] = a[k]
    end
    redis.call('HSET', num, unpack(h))
    redis.call('ZADD', wait, unpack(z))
    redis.call('ZADD', draw, unpack(z))
  end
  redis.call('SET', seq, base + n)
  redis.call('SET', seed, given_seed)
  redis.call('HINCRBY', stats, 'joined', n)
end

-- Draws the pre-queue if it waits for its draw (the first call after the
-- opening that finds it undrawn). Returns true when it is drawn (now or
-- before) or there is none; false, having done nothing, when the draw is
-- due and the caller gave no given_seed: the script then answers {'DRAW'}
-- and queue.c calls it again with one.
local function drawn()
  if redis.call('EXISTS', seed) == 1 or redis.call('EXISTS', pre) == 0 then return true end
  if given_seed == '' then return false end
  do_draw()
  return true
end

-- The places, which the progress script does not read.
-- luacheck: push no unused

-- a waiter r places from the front
local function waiting(n, r)
  -- admissions over the last minute, for the estimated wait
  local cnt = redis.call('ZCARD', admits)
  local first = redis.call('ZRANGE', admits, 0, 0, 'WITHSCORES')
  local span = 0
  if #first > 0 then span = now - tonumber(first[2]) end
  return {n, 'WAITING', r, 0, now, cnt, span}
end

-- The user's place under number n. An admitted turn not yet claimed is
-- claimed here: the turn starts now, for ttl_ms.
local function place(n)
  local a = redis.call('ZSCORE', active, user)
  if a and tonumber(a) > now then return {n, 'ACTIVE', 0, tonumber(a), now, 0, 0} end
  if redis.call('ZREM', claim, user) == 1 then
    redis.call('ZADD', active, now + ttl_ms, user)
    return {n, 'ACTIVE', 0, now + ttl_ms, now, 0, 0}
  end
  local r = redis.call('ZRANK', wait, user)
  if not r then return {n, 'EXPIRED', 0, 0, now, 0, 0} end
  return waiting(n, r)
end
-- luacheck: pop
