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
-- Cost: a constant number of calls per event-time hour of the batch, not per
-- reading nor per node: one HMGET, one HSET, one EXPIRE (seenHours.lua). While
-- the layout before is consulted, each node and hour also costs one SMISMEMBER
-- and, for what is accepted, one SADD and one EXPIRE of its set.
--
-- KEYS[1]       the shard's stream
-- KEYS[2..h+1]  the dedupe hashes (seen:{tag}:<hour>) of this batch, distinct
-- KEYS[h+2..]   while sets of the layout before may hold identities: the
--               sets (seen:{tag}:<node>:<hour>) of this batch's node-hours
-- ARGV[1]   MINID for approximate trimming: entries older than this arrival time
--           go, unless a consumer group still needs them (see below)
-- ARGV[2]   dedupe horizon, seconds: a hash expires this long after its last acceptance
-- ARGV[3]   the source (gateway name)
-- ARGV[4]   the stream's bound in bytes (0: none), see below
-- ARGV[5]   n, the number of readings in the request
-- ARGV[6]   the readings' JSON as one array, in the request's order
-- ARGV[7]   where each reading's JSON starts in ARGV[6] (1-based bytes), then
--           #ARGV[6] + 1: n + 1 packed little-endian int32
-- ARGV[8]   h, the number of dedupe hashes
-- ARGV[9]   '1' when KEYS holds sets of the layout before (one per node of
--           each hour, in the order of the ids below), else '0'
-- ARGV[10..] per hash, in KEYS order, four arguments (SeenHours.hourArgs):
--           its node ids joined by a line feed, each node's count of
--           readings (packed int32; empty when each has one), their offsets
--           in the hour grouped by node (packed int32), and their positions
--           in the request (1-based, packed int32) in the same order
-- Returns { accepted, duplicates, entry id or false }, or the error
-- 'STREAM_FULL <bytes held> <bound>'.

--@include seenHours

local hours = tonumber(ARGV[8])
local layoutBefore = ARGV[9] == '1'
local dropped, duplicates = {}, 0
local writes = {}
-- While the layout before is consulted, what is accepted goes into its sets
-- too: an ingest replica of the version before, still running in a rolling
-- upgrade (or back after a rollback), reads only those.
local writesBefore = {}

local setAt = hours + 2 -- the next node's set of the layout before, in KEYS
for k = 2, hours + 1 do
  local arg = 10 + 4 * (k - 2)
  local nodes, offsets, firsts = hour_nodes(ARGV[arg], ARGV[arg + 1], ARGV[arg + 2])
  local positions = ARGV[arg + 3]
  local held = call_per_item('HMGET', KEYS[k], nodes)
  local updates = {}
  for j = 1, #nodes do
    local old, set = nil, nil
    if layoutBefore then
      set = KEYS[setAt]
      setAt = setAt + 1
      old = call_per_item('SMISMEMBER', set, offset_numbers(offsets[j]))
    end
    local added, repeats = fresh_offsets(held[j], offsets[j], old)
    if layoutBefore and #added > 0 then writesBefore[set] = offset_numbers(added) end
    for _, r in ipairs(repeats) do
      dropped[struct.unpack('<i4', positions, 4 * (firsts[j] + r) + 1)] = true
      duplicates = duplicates + 1
    end
    if #added > 0 then
      updates[#updates + 1] = nodes[j]
      updates[#updates + 1] = (held[j] or '') .. added
    end
  end
  writes[k] = updates
end

local n = tonumber(ARGV[5])
local accepted = n - duplicates
if accepted == 0 then
  return { 0, duplicates, false }
end

-- The entry keeps the readings in the order the request sent them; when
-- none is a duplicate (the usual case) the array is appended as it came.
local payload = ARGV[6]
if duplicates > 0 then
  local starts, kept = ARGV[7], {}
  for p = 1, n do
    if not dropped[p] then
      local from = struct.unpack('<i4', starts, 4 * (p - 1) + 1)
      local after = struct.unpack('<i4', starts, 4 * p + 1)
      kept[#kept + 1] = string.sub(payload, from, after - 2)
    end
  end
  payload = '[' .. table.concat(kept, ',') .. ']'
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
  'n', accepted, 'src', ARGV[3], 'readings', payload)

--@include slices
for k, updates in pairs(writes) do
  if #updates > 0 then
    call_in_slices('HSET', KEYS[k], updates, 1, #updates)
    redis.call('EXPIRE', KEYS[k], ARGV[2])
  end
end
for set, members in pairs(writesBefore) do
  call_in_slices('SADD', set, members, 1, #members)
  redis.call('EXPIRE', set, ARGV[2])
end

return { accepted, duplicates, entry }
