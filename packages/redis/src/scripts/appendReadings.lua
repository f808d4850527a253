#!lua
-- Appends one request's validated readings for one stream shard, skipping every
-- reading whose identity (node, event time) was accepted within the dedupe
-- horizon, including repeats inside the batch itself.
--
-- All or nothing: the shebang makes Redis refuse the whole script up front when
-- it is out of memory, and XADD runs before any identity is marked as seen, so a
-- failure can never leave a reading marked "seen" without being in the stream
-- (which would turn the gateway's retry into a silent loss).
--
-- Cost: a constant number of calls per dedupe set (one node's event-time hour),
-- not per reading: one SMISMEMBER, one SADD, one EXPIRE.
--
-- KEYS[1]   the shard's stream
-- KEYS[2..] the dedupe sets (seen:{tag}:<node>:<hour>) of this batch, distinct
-- ARGV[1]   MINID for approximate trimming: entries older than this arrival time
--           go, unless a consumer group still needs them (see below)
-- ARGV[2]   dedupe horizon, seconds: a set expires this long after its last acceptance
-- ARGV[3]   the source (gateway name)
-- ARGV[4]   the stream's bound in bytes (0: none), see below
-- ARGV[5]   the number of readings in the request
-- ARGV[6..] per set, in KEYS order: a count m, m offsets (ms in the hour), the m
--           readings' positions in the request, then their JSON in the same order
-- Returns { accepted, duplicates, entry id or false }, or the error
-- 'STREAM_FULL <bytes held> <bound>'.

local fresh, added = {}, {}
local accepted, duplicates = 0, 0
local at = 6

for k = 2, #KEYS do
  local m = tonumber(ARGV[at])
  local offsets = at + 1
  local positions = at + 1 + m
  local readings = at + 1 + 2 * m
  local seen = redis.call('SMISMEMBER', KEYS[k], unpack(ARGV, offsets, offsets + m - 1))
  local inBatch, members = {}, {}
  for i = 0, m - 1 do
    local member = ARGV[offsets + i]
    if seen[i + 1] == 1 or inBatch[member] then
      duplicates = duplicates + 1
    else
      inBatch[member] = true
      members[#members + 1] = member
      accepted = accepted + 1
      fresh[tonumber(ARGV[positions + i])] = ARGV[readings + i]
    end
  end
  added[k] = members
  at = readings + m
end

if accepted == 0 then
  return { 0, duplicates, false }
end

-- The entry keeps the readings in the order the request sent them.
local ordered = {}
for p = 1, tonumber(ARGV[5]) do
  if fresh[p] then
    ordered[#ordered + 1] = fresh[p]
  end
end

-- Retention trims what every consumer group is done with, never more: an
-- entry a group has not read, or read and not acknowledged, stays however
-- old it is (a consumer down longer than the retention loses nothing).
--
-- It is bounded in bytes too: once the stream holds more than ARGV[4]
-- bytes, everything every group is done with goes, however young; if what
-- the groups still need is itself over the bound, the append is refused
-- (nothing written): ingest answers 503 until the consumers catch up, rather
-- than Redis running out of memory or trimming what nobody has read.
--@include entryIds

local cut = nil -- the oldest entry some group still needs
local ok, groups = pcall(redis.call, 'XINFO', 'GROUPS', KEYS[1])
if ok then
  for _, info in ipairs(groups) do
    local name, delivered
    for i = 1, #info, 2 do
      if info[i] == 'name' then name = info[i + 1] end
      if info[i] == 'last-delivered-id' then delivered = info[i + 1] end
    end
    if delivered and (not cut or before(delivered, cut)) then cut = delivered end
    local pending = redis.call('XPENDING', KEYS[1], name)
    if pending[2] and (not cut or before(pending[2], cut)) then cut = pending[2] end
  end
end
local minid = ARGV[1] .. '-0'
if cut and before(cut, minid) then minid = cut end

local bound = tonumber(ARGV[4])
if ok and bound > 0 then
  local held = redis.call('MEMORY', 'USAGE', KEYS[1]) or 0
  if held > bound and cut then
    redis.call('XTRIM', KEYS[1], 'MINID', cut)
    held = redis.call('MEMORY', 'USAGE', KEYS[1]) or 0
  end
  if held > bound then
    return redis.error_reply('STREAM_FULL ' .. held .. ' ' .. bound)
  end
end

local entry = redis.call('XADD', KEYS[1], 'MINID', '~', minid, '*',
  'n', accepted, 'src', ARGV[3], 'readings', '[' .. table.concat(ordered, ',') .. ']')

--@include slices
for k, members in pairs(added) do
  if #members > 0 then
    call_in_slices('SADD', KEYS[k], members, 1, #members)
    redis.call('EXPIRE', KEYS[k], ARGV[2])
  end
end

return { accepted, duplicates, entry }
