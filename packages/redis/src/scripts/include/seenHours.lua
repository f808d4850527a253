-- The dedupe layout (DedupeSets): per shard and event-time hour, a hash of
-- node id -> the accepted readings' millisecond offsets in that hour, 4 bytes
-- each (little-endian int32), in the order they were accepted. One hash per
-- hour costs one HMGET, one HSET and one EXPIRE per request and hour, where a
-- set per node and hour cost three calls per node.

-- One hour's readings as SeenHours.hourArgs packs them: `ids`, the node ids
-- joined by a line feed; `counts`, each node's count of readings (packed
-- int32), empty when every node has one; `offsets`, their offsets grouped by
-- node (packed int32). Returns the node ids, each node's packed offsets, and
-- the 0-based index of each node's first offset (for a positions list packed
-- in the same order).
local function hour_nodes(ids, counts, offsets)
  local nodes, packed, firsts = {}, {}, {}
  local one = #counts == 0
  local from, at, j = 1, 0, 0
  local last = #ids
  while from <= last do
    local stop = string.find(ids, '\n', from, true) or (last + 1)
    j = j + 1
    nodes[j] = string.sub(ids, from, stop - 1)
    local m = 1
    if not one then m = struct.unpack('<i4', counts, 4 * j - 3) end
    firsts[j] = at
    packed[j] = string.sub(offsets, 4 * at + 1, 4 * (at + m))
    at = at + m
    from = stop + 1
  end
  return nodes, packed, firsts
end

-- Whether the packed offsets `held` contain the 4-byte `offset` (at a
-- multiple of 4: a match straddling two offsets is no match).
local function holds_offset(held, offset)
  local from = 1
  while true do
    local at = string.find(held, offset, from, true)
    if at == nil then return false end
    if (at - 1) % 4 == 0 then return true end
    from = at + 1
  end
end

-- One node's packed `offsets` against those it `held` (a string, or false)
-- and, while sets of the layout before may hold some, `before` (that set's
-- SMISMEMBER reply, or nil). Returns the new offsets, packed, and the
-- 0-based indexes of those that were accepted already (repeats within
-- `offsets` included).
local NONE = {}
local ONLY_ONE = { 0 }

local function fresh_offsets(held, offsets, before)
  held = held or ''
  local m = #offsets / 4
  -- One reading of the node in this request (a gateway's usual batch): no tables.
  if m == 1 then
    if (#held > 0 and holds_offset(held, offsets)) or (before and before[1] == 1) then return '', ONLY_ONE end
    return offsets, NONE
  end
  -- Many offsets against a long list: one table, not a scan per offset.
  local lookup = nil
  if m > 1 and m * #held > 16384 then
    lookup = {}
    for i = 1, #held, 4 do lookup[string.sub(held, i, i + 3)] = true end
  end
  local added, taken, repeats = {}, nil, {}
  if m > 1 then taken = {} end
  for r = 0, m - 1 do
    local offset = string.sub(offsets, 4 * r + 1, 4 * r + 4)
    local seen
    if lookup then
      seen = lookup[offset]
    else
      seen = #held > 0 and holds_offset(held, offset)
    end
    if not seen and taken then seen = taken[offset] end
    if not seen and before then seen = before[r + 1] == 1 end
    if seen then
      repeats[#repeats + 1] = r
    else
      added[#added + 1] = offset
      if taken then taken[offset] = true end
    end
  end
  return table.concat(added), repeats
end

-- The packed offsets as numbers (the layout before kept them in sets).
local function offset_numbers(offsets)
  local numbers = {}
  for i = 1, #offsets, 4 do numbers[#numbers + 1] = struct.unpack('<i4', offsets, i) end
  return numbers
end

-- redis.call(command, key, items...) for a command with one reply per item
-- (HMGET, SMISMEMBER), in slices (unpack() is bounded by Lua's C stack): the
-- replies as one list.
local function call_per_item(command, key, items)
  local replies = {}
  for i = 1, #items, 1000 do
    local part = redis.call(command, key, unpack(items, i, math.min(i + 999, #items)))
    for q = 1, #part do replies[i + q - 1] = part[q] end
  end
  return replies
end
