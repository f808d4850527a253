#!lua
-- Advances a shard's archive watermark: every entry up to it is in the
-- warehouse. It moves to the batch just committed only if no earlier entry
-- is still pending for the group (an entry that failed, or one a dead
-- archiver had read), and never backwards.
--
-- KEYS[1] stream   KEYS[2] watermark
-- ARGV[1] group   ARGV[2] the last entry id of the committed batch
-- Returns the watermark.

local function before(a, b)
  local am, as = string.match(a, '^(%d+)-(%d+)$')
  local bm, bs = string.match(b, '^(%d+)-(%d+)$')
  am, as, bm, bs = tonumber(am), tonumber(as), tonumber(bm), tonumber(bs)
  return am < bm or (am == bm and as < bs)
end

local id = ARGV[2]
local pending = redis.call('XPENDING', KEYS[1], ARGV[1])
if pending[1] > 0 and not before(id, pending[2]) then
  return redis.call('GET', KEYS[2])
end
local current = redis.call('GET', KEYS[2])
if current and not before(current, id) then
  return current
end
redis.call('SET', KEYS[2], id)
return id
