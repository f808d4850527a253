#!lua
-- Advances a shard's archive watermark: every entry up to it is in the
-- warehouse (or, for an entry that could not be processed, in the
-- dead-letter stream). With nothing pending for the group it is the group's
-- position; otherwise the batch just committed, if it lies before the
-- oldest pending entry. It never moves backwards.
--
-- KEYS[1] stream   KEYS[2] watermark
-- ARGV[1] group   ARGV[2] the last entry id of the committed batch
-- Returns the watermark.

--@include entryIds

local id = ARGV[2]
local pending = redis.call('XPENDING', KEYS[1], ARGV[1])
if pending[1] == 0 then
  for _, group in ipairs(redis.call('XINFO', 'GROUPS', KEYS[1])) do
    local info = {}
    for i = 1, #group, 2 do
      info[group[i]] = group[i + 1]
    end
    if info['name'] == ARGV[1] and before(id, info['last-delivered-id']) then
      id = info['last-delivered-id']
    end
  end
elseif not before(id, pending[2]) then
  return redis.call('GET', KEYS[2])
end
local current = redis.call('GET', KEYS[2])
if current and not before(current, id) then
  return current
end
redis.call('SET', KEYS[2], id)
return id
