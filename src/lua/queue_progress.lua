-- queue_progress.lua: a concert's queue as everyone may see it, for the
-- public progress document. Reads only (but for the sale state), and runs
-- no admission: a crowd polling it, which nginx answers from its cache
-- anyway, neither moves the queue nor keeps anyone's place.
--
-- The sale state is the one queue_join.lua keeps beside the queue: on a
-- miss the caller reads it from the database and calls again with it
-- (given_sale), which stores it for sale_ttl_ms.
-- Replies {'SALE'} (state unknown), or {sale state, highest number
-- admitted, waiting count, admissions in the last window_ms, Redis time}.

local served, wait, admits, sale_key = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local given_sale, sale_ttl_ms, use_cached_sale = ARGV[1], ARGV[2], ARGV[3]
local window_ms = tonumber(ARGV[4])

local sale = given_sale
if sale == '' then
  if use_cached_sale == '1' then sale = redis.call('GET', sale_key) end
  if not sale then return {'SALE'} end
elseif tonumber(sale_ttl_ms) > 0 then
  redis.call('SET', sale_key, sale, 'PX', sale_ttl_ms)
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
return {sale, tonumber(redis.call('GET', served) or '0'), redis.call('ZCARD', wait),
        redis.call('ZCOUNT', admits, now - window_ms + 1, '+inf'), now}
