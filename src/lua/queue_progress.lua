-- queue_progress.lua: a concert's queue as everyone may see it, for the
-- public progress document (after queue_prologue.lua). It runs admission
-- (admit(), O(admitted)) and, at the opening, the pre-queue's draw: the
-- queue moves even when nobody polls their own place, while nginx keeps
-- the document a second, so a crowd of readers costs about one run per
-- second. Nobody's place is read or kept by it.
-- Replies {'SALE'} (state unknown), {'DRAW'} (call again with a seed), or
-- {phase, highest number admitted, waiting count, admissions in the last
-- window_ms, Redis time, opening ms (0: none), pre-queue size}.

-- verified '1': run admission ('0' in maintenance, when nobody can claim).
local window_ms, admitting = number, verified == '1'
local phase, opens = sale_phase()
if not phase then return {'SALE'} end
if admitting and phase ~= 'u' and phase ~= 'n' and phase ~= 'f' and not drawn() then
  return {'DRAW'}
end
if phase ~= 'n' and admitting then admit(false) end
local waiting_n = redis.call('ZCARD', wait)
local pre_n = 0
if redis.call('EXISTS', seed) == 0 then pre_n = redis.call('ZCARD', pre) end
return {phase, tonumber(redis.call('GET', served) or '0'), waiting_n,
        redis.call('ZCOUNT', admits, now - window_ms + 1, '+inf'), now, opens, pre_n}
