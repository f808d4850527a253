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
-- Cost: a constant number of calls per dedupe slot (20 minutes of event
-- time) of the batch, not per reading nor per node: one HMGET, one HSET, one
-- EXPIRE (include/seenSlots.lua); and one HMGET per node with a reading at
-- or below what its sealed lists hold (a late reading of a node sending
-- every few seconds). While the hour hashes before may hold
-- identities, each slot also costs one HMGET, HSET and EXPIRE of its hour's
-- hash; while the sets before that may, each node and slot one SMISMEMBER
-- and, for what is accepted, one SADD and one EXPIRE of its set.
--
-- KEYS[1]        the shard's stream
-- KEYS[2..s+1]   the dedupe hashes (seen:{tag}:s<slot>) of this batch, distinct
-- then, while hour hashes may hold identities, each slot's hour hash
--                (seen:{tag}:<hour>), in the same order (two slots of an
--                hour name it twice)
-- then, while sets may hold identities, each node's set
--                (seen:{tag}:<node>:<hour>), slot by slot in the order of
--                its node ids
-- then           the shard's catch-up lanes (ShardKeys.catchupLanes, ARGV[14] of them)
-- KEYS[#KEYS]    their nodes: node id → the last lane entry holding its readings
--                (the node is in the lane while that entry is, in its own lane)
-- ARGV[1]   MINID for approximate trimming: entries older than this arrival time
--           go, unless a consumer group still needs them (see below)
-- ARGV[2]   dedupe horizon, seconds: a hash expires this long after its last acceptance
-- ARGV[3]   the source (gateway name)
-- ARGV[4]   the bound in bytes of the stream and its lane together (0: none), see below
-- ARGV[5]   n, the number of readings in the request
-- ARGV[6]   the readings' JSON as one array, in the request's order
-- ARGV[7]   where each reading's JSON starts in ARGV[6] (1-based bytes), then
--           #ARGV[6] + 1: n + 1 packed little-endian int32
-- ARGV[8]   s, the number of dedupe slots
-- ARGV[9]   '1' when KEYS holds the hour hashes, else '0'
-- ARGV[10]  '1' when KEYS holds the sets, else '0'
-- ARGV[11]  which readings are late enough for the catch-up lane: one byte
--           per reading in the request's order, '1' or '0'; empty when none
-- ARGV[12]  the group whose backlog sends them there (the aggregator's)
-- ARGV[13]  from how many entries that group has not read it is behind (CATCHUP.gateEntries)
-- ARGV[14]  the number of catch-up lanes (CATCHUP.lanes)
-- ARGV[15]  each reading's lane (catchupLaneOf its node), one byte per reading
--           in the request's order: '0' + the lane's index
-- ARGV[16..] per slot, in KEYS order, five arguments (SeenSlots.slotArgs):
--           its node ids joined by a line feed, each node's count of
--           readings (packed int32; empty when each has one), their offsets
--           in the slot grouped by node (3 bytes each), their positions in
--           the request (1-based, packed int32) in the same order, and how
--           many ms after its hour's start the slot starts
-- Returns { accepted, duplicates, entry id or false } (the stream's entry,
-- or the lane's when all went there), or the error
-- 'STREAM_FULL <bytes held> <bound> <bytes of them in the lane>'.

--@include slices
--@include seenSlots

local slots = tonumber(ARGV[8])
local withHours = ARGV[9] == '1'
local withSets = ARGV[10] == '1'
local dropped, duplicates = {}, 0
local writes = {}
-- While a layout before is consulted, what is accepted goes into it too: a
-- replica of that version, still running in a rolling upgrade (or back after
-- a rollback), reads only it.
local hourWrites, setWrites = {}, {}

-- The catch-up lanes (see below) are in play with late readings or while
-- one holds anything: then each reading's node is noted, by its position.
local laneCount, laneFlags = tonumber(ARGV[14]), ARGV[15]
local lanesAt, laneNodes = #KEYS - laneCount, KEYS[#KEYS]
local lateFlags = ARGV[11]
local laneLengths, laneLength = {}, 0
-- One call while every lane is empty (the usual case): an empty stream is no key.
if redis.call('EXISTS', unpack(KEYS, lanesAt, lanesAt + laneCount - 1)) > 0 then
  for l = 0, laneCount - 1 do
    local length = redis.call('XLEN', KEYS[lanesAt + l])
    laneLengths[l] = length
    laneLength = laneLength + length
  end
else
  for l = 0, laneCount - 1 do laneLengths[l] = 0 end
end
local lanePlay = lateFlags ~= '' or laneLength > 0
local nodeAt, requestNodes, noted, laneOfNode = {}, {}, {}, {}

local setAt = 2 + slots * (withHours and 2 or 1) -- the next node's set, in KEYS
for k = 2, slots + 1 do
  local arg = 16 + 5 * (k - 2)
  local nodes, offsets, firsts = slot_nodes(ARGV[arg], ARGV[arg + 1], ARGV[arg + 2])
  local positions, base = ARGV[arg + 3], tonumber(ARGV[arg + 4])
  local held = call_per_item('HMGET', KEYS[k], nodes)
  local hourKey, heldHour, hourUpdates = nil, nil, nil
  if withHours then
    hourKey = KEYS[k + slots]
    heldHour = call_per_item('HMGET', hourKey, nodes)
    hourUpdates = hourWrites[hourKey] or {}
    hourWrites[hourKey] = hourUpdates
  end
  local addedOf = {}
  for j = 1, #nodes do
    if lanePlay then
      local id = nodes[j]
      if not noted[id] then
        noted[id] = true
        requestNodes[#requestNodes + 1] = id
      end
      for r = 0, #offsets[j] / WIDTH - 1 do
        local p = struct.unpack('<i4', positions, 4 * (firsts[j] + r) + 1)
        nodeAt[p] = id
        laneOfNode[id] = string.byte(laneFlags, p) - 48
      end
    end
    local known, set, inHour = nil, nil, nil
    if withHours or withSets then
      inHour = hour_offsets(offsets[j], base)
      known = {}
      if withHours then held_in_hour(known, heldHour[j], inHour) end
      if withSets then
        set = KEYS[setAt]
        setAt = setAt + 1
        local members = call_per_item('SMISMEMBER', set, inHour)
        for r = 1, #members do
          if members[r] == 1 then known[r] = true end
        end
      end
    end
    if has_sealed(held[j]) then known = held_in_sealed(KEYS[k], nodes[j], held[j], offsets[j], known) end
    local added, repeats = fresh_offsets(held[j], offsets[j], known)
    addedOf[j] = added
    for _, r in ipairs(repeats) do
      dropped[struct.unpack('<i4', positions, 4 * (firsts[j] + r) + 1)] = true
      duplicates = duplicates + 1
    end
    if #added > 0 then
      if withHours or withSets then
        local addedInHour = hour_offsets(added, base)
        if withHours then
          -- Two slots of one hour: the second appends to what the first wrote.
          local node = nodes[j]
          local before = hourUpdates[node] or heldHour[j] or ''
          hourUpdates[node] = before .. pack_int32(addedInHour)
        end
        if withSets then
          local members = setWrites[set] or {}
          for _, offset in ipairs(addedInHour) do members[#members + 1] = offset end
          setWrites[set] = members
        end
      end
    end
  end
  writes[k] = field_writes(nodes, held, addedOf)
end

local n = tonumber(ARGV[5])
local accepted = n - duplicates
if accepted == 0 then
  return { 0, duplicates, false }
end

-- Retention trims what every consumer group is done with, never more: an
-- entry a group has not read, or read and not acknowledged, stays however
-- old it is (a consumer down longer than the retention loses nothing).
--
-- It is bounded in bytes too: once the stream (with its lane) holds more
-- than ARGV[4] bytes, everything every group is done with goes, however young; if what
-- the groups still need is itself over the bound, the append is refused
-- (nothing written): ingest answers 503 until the consumers catch up, rather
-- than Redis running out of memory or trimming what nobody has read.
--@include entryIds
--@include unreadEntries

local stream = KEYS[1]
local gate = tonumber(ARGV[13])
local cut = nil -- the oldest entry some group still needs
local behind = false -- the gating group has `gate` entries or more left to read
local ok, groups = pcall(redis.call, 'XINFO', 'GROUPS', stream)
if ok then
  for _, info in ipairs(groups) do
    local name, delivered, lag = group_fields(info)
    if delivered and (not cut or before(delivered, cut)) then cut = delivered end
    local pending = redis.call('XPENDING', stream, name)
    if pending[2] and (not cut or before(pending[2], cut)) then cut = pending[2] end
    if name == ARGV[12] and lateFlags ~= '' then
      behind = unread_entries(stream, lag, delivered, gate) >= gate
    end
  end
end

-- The catch-up lanes: a node's readings go to its lane when it has readings
-- there already (so each node's readings stay in their order), or when one
-- of them is late while a lane holds anything or the aggregator is behind
-- in the stream; then the readings of the nodes that are not catching up
-- do not queue behind the backlog of those that are. Each node has one lane
-- of several (by its id), so a chunk the aggregator moves from one holds
-- several readings of each of a part of the nodes, not one reading of every
-- node (docs/ingest.md).
local inLane = {}
if lanePlay then
  if lateFlags ~= '' and (laneLength > 0 or behind) then
    for p = 1, #lateFlags do
      if string.byte(lateFlags, p) == 49 and not dropped[p] then inLane[nodeAt[p]] = true end
    end
  end
  if laneLength > 0 then
    -- The aggregator moves a lane's oldest entries (admitCatchup.lua): a
    -- node whose last entry there is older than its lane's first has left
    -- it. Asked only of the nodes no late reading sends there already (in
    -- a backlog's requests, none).
    local asked = {}
    for _, id in ipairs(requestNodes) do
      if not inLane[id] then asked[#asked + 1] = id end
    end
    local firsts = {}
    local held = call_per_item('HMGET', laneNodes, asked)
    for i, id in ipairs(asked) do
      if held[i] then
        local l = laneOfNode[id]
        local first = firsts[l]
        if first == nil then
          first = laneLengths[l] > 0 and redis.call('XRANGE', KEYS[lanesAt + l], '-', '+', 'COUNT', 1)[1][1]
          firsts[l] = first
        end
        if first and not before(held[i], first) then inLane[id] = true end
      end
    end
  end
end
local toLane = next(inLane) ~= nil

-- Each entry keeps its readings in the order the request sent them; when
-- none is a duplicate and all go one way (the usual case) the array is
-- appended as it came.
-- A lane's readings, and the nodes they name, by lane.
local payload = ARGV[6]
local inStream = accepted
local late, laneIds = {}, {}
if duplicates > 0 or toLane then
  local starts, kept, listed = ARGV[7], {}, {}
  for p = 1, n do
    if not dropped[p] then
      local from = struct.unpack('<i4', starts, 4 * (p - 1) + 1)
      local after = struct.unpack('<i4', starts, 4 * p + 1)
      local reading = string.sub(payload, from, after - 2)
      local id = nodeAt[p]
      if id and inLane[id] then
        local l = laneOfNode[id]
        local readings = late[l]
        if readings == nil then
          readings = {}
          late[l] = readings
          laneIds[l] = {}
        end
        readings[#readings + 1] = reading
        if not listed[id] then
          listed[id] = true
          local ids = laneIds[l]
          ids[#ids + 1] = id
        end
      else
        kept[#kept + 1] = reading
      end
    end
  end
  inStream = #kept
  payload = inStream > 0 and ('[' .. table.concat(kept, ',') .. ']') or nil
end

-- The bound holds the stream and its lane together: moving the lane into
-- the stream changes neither.
local bound = tonumber(ARGV[4])
local minid = ARGV[1] .. '-0'
if cut and before(cut, minid) then minid = cut end
if ok and bound > 0 then
  local inLaneBytes = 0
  for l = 0, laneCount - 1 do
    if laneLengths[l] > 0 then inLaneBytes = inLaneBytes + (redis.call('MEMORY', 'USAGE', KEYS[lanesAt + l]) or 0) end
  end
  local held = (redis.call('MEMORY', 'USAGE', stream) or 0) + inLaneBytes
  if held > bound and cut then
    redis.call('XTRIM', stream, 'MINID', cut)
    held = (redis.call('MEMORY', 'USAGE', stream) or 0) + inLaneBytes
  end
  if held > bound then
    return redis.error_reply('STREAM_FULL ' .. held .. ' ' .. bound .. ' ' .. inLaneBytes)
  end
end

local entry = false
if payload then
  entry = redis.call('XADD', stream, 'MINID', '~', minid, '*',
    'n', inStream, 'src', ARGV[3], 'readings', payload)
end
-- Each node's last entry in its lane: until it is moved, the node's readings follow it.
local marks = {}
for l = 0, laneCount - 1 do
  local readings = late[l]
  if readings then
    local queued = redis.call('XADD', KEYS[lanesAt + l], '*',
      'n', #readings, 'src', ARGV[3], 'readings', '[' .. table.concat(readings, ',') .. ']')
    for _, id in ipairs(laneIds[l]) do
      marks[#marks + 1] = id
      marks[#marks + 1] = queued
    end
    entry = entry or queued
  end
end
if #marks > 0 then call_in_slices('HSET', laneNodes, marks, 1, #marks) end
for k, updates in pairs(writes) do
  if #updates > 0 then
    call_in_slices('HSET', KEYS[k], updates, 1, #updates)
    redis.call('EXPIRE', KEYS[k], ARGV[2])
  end
end
write_hour_hashes(hourWrites, ARGV[2])
for set, members in pairs(setWrites) do
  call_in_slices('SADD', set, members, 1, #members)
  redis.call('EXPIRE', set, ARGV[2])
end

return { accepted, duplicates, entry }
