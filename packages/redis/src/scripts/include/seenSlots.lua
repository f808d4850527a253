-- The dedupe layout (DedupeSets): per shard and 20-minute slot of event
-- time, a hash of node id -> the accepted readings' millisecond offsets in
-- that slot, 3 bytes each (little-endian), in the order they were accepted.
-- A request costs one HMGET, one HSET and one EXPIRE per slot it spans. A
-- slot keeps each node's list short: the script copies it whole, through
-- the HMGET reply, the new value and the HSET, and an hour's list cost it
-- about 3 ns a byte.
--
-- A node that sends more than SEALED_AFTER readings in a slot (one every
-- 5 s or faster) would still make that copy grow with every reading (at one
-- a second, 3.6 KB a request by the slot's end). So its list is sealed
-- there: moved whole to the field `<node>\n<n>` (the n-th sealed list,
-- never read again but for a late reading), and the node's field starts
-- over with a header of two entries: SEALED_MARK + n (no offset reaches it:
-- a slot is 1,200,000 ms), then the highest offset any sealed list holds
-- (`top`). A reading above `top` is looked for in the node's field alone;
-- one at or below it in the sealed lists too (one HMGET). The header's
-- entries are offsets to a version before this one (the mark matches no
-- reading, `top` is one accepted): a replica of it still running in a
-- rolling upgrade reads and appends to the field as before, and misses
-- only the sealed lists' identities.
--
-- The layouts before, still consulted while they may hold identities (and
-- written too, for replicas of those versions still running): the hour
-- layout, a hash per hour (seen:{tag}:<hour>, node -> 4-byte offsets in the
-- hour), and before it the set layout, a set per node and hour of decimal
-- offsets (seen:{tag}:<node>:<hour>).
--
-- Needs include/slices before it (call_per_item).

local WIDTH = 3
local SEALED_AFTER = 256 * WIDTH
local SEALED_MARK = 12582912 -- 0xC00000

-- The offset packed at byte `at` of `packed`.
local function offset_at(packed, at)
  local a, b, c = string.byte(packed, at, at + 2)
  return a + b * 256 + c * 65536
end

-- Whether a node's field starts with the header: its first entry's high
-- byte (a real offset's is at most 0x12). Cheap: asked of every node of a
-- request.
local function has_sealed(held)
  return held and (string.byte(held, WIDTH) or 0) >= 192 and #held >= 2 * WIDTH
end

-- A node's field's sealed lists and their top offset (0, -1 without).
local function sealed_of(held)
  if not has_sealed(held) then return 0, -1 end
  return offset_at(held, 1) - SEALED_MARK, offset_at(held, 1 + WIDTH)
end

-- Whether the packed offsets `held` (`width` bytes each) contain `offset`
-- (at a multiple of `width`: a match straddling two offsets is no match).
local function holds_offset(held, offset, width)
  local from = 1
  while true do
    local at = string.find(held, offset, from, true)
    if at == nil then return false end
    if (at - 1) % width == 0 then return true end
    from = at + 1
  end
end

-- One node's packed slot `offsets` against those it `held` (a string, or
-- false) and `known`, the 1-based indexes of offsets a layout before holds
-- (or nil). Returns the new offsets, packed, and the 0-based indexes of
-- those that were accepted already (repeats within `offsets` included).
local NONE = {}
local ONLY_ONE = { 0 }

local function fresh_offsets(held, offsets, known)
  held = held or ''
  local m = #offsets / WIDTH
  -- One reading of the node in this request (a gateway's usual batch): no tables.
  if m == 1 then
    if (#held > 0 and holds_offset(held, offsets, WIDTH)) or (known and known[1]) then return '', ONLY_ONE end
    return offsets, NONE
  end
  -- Many offsets against a long list: one table, not a scan per offset.
  local lookup = nil
  if m * #held > 16384 then
    lookup = {}
    for i = 1, #held, WIDTH do lookup[string.sub(held, i, i + WIDTH - 1)] = true end
  end
  local added, taken, repeats = {}, {}, {}
  for r = 0, m - 1 do
    local offset = string.sub(offsets, WIDTH * r + 1, WIDTH * r + WIDTH)
    local seen
    if lookup then
      seen = lookup[offset]
    else
      seen = #held > 0 and holds_offset(held, offset, WIDTH)
    end
    seen = seen or taken[offset] or (known and known[r + 1])
    if seen then
      repeats[#repeats + 1] = r
    else
      added[#added + 1] = offset
      taken[offset] = true
    end
  end
  return table.concat(added), repeats
end

-- The 1-based indexes of `offsets` (a node's packed offsets in the slot
-- hash `key`) that the node's sealed lists hold, added to `known` (a table
-- made when needed, or nil); `held` is the node's field.
local function held_in_sealed(key, node, held, offsets, known)
  local sealed, top = sealed_of(held)
  if sealed == 0 then return known end
  local lists = nil
  for r = 1, #offsets / WIDTH do
    local at = WIDTH * (r - 1) + 1
    if offset_at(offsets, at) <= top then
      if lists == nil then
        local fields = {}
        for n = 1, sealed do fields[n] = node .. '\n' .. n end
        local parts = call_per_item('HMGET', key, fields)
        for n = 1, sealed do parts[n] = parts[n] or '' end
        lists = table.concat(parts)
      end
      if holds_offset(lists, string.sub(offsets, at, at + WIDTH - 1), WIDTH) then
        known = known or {}
        known[r] = true
      end
    end
  end
  return known
end

-- A node's field `value` past SEALED_AFTER bytes, sealed (see above): the
-- field/value pairs to write appended to `updates`.
local function seal_field(updates, node, value)
  local sealed, top = sealed_of(value)
  local list = sealed > 0 and string.sub(value, 2 * WIDTH + 1) or value
  for at = 1, #list, WIDTH do
    local offset = offset_at(list, at)
    if offset > top then top = offset end
  end
  updates[#updates + 1] = node
  updates[#updates + 1] = struct.pack('<I3I3', SEALED_MARK + sealed + 1, top)
  updates[#updates + 1] = node .. '\n' .. (sealed + 1)
  updates[#updates + 1] = list
end

-- A slot hash's writes, as field/value pairs: each of `nodes`' field with
-- its `added` offsets (packed; '' for none) joined to what it `held`, sealed
-- past SEALED_AFTER bytes. One call a slot, not one a node (a call costs
-- the script about 0.1 µs).
local function field_writes(nodes, held, added)
  local updates = {}
  for j = 1, #nodes do
    local new = added[j]
    if #new > 0 then
      local value = (held[j] or '') .. new
      if #value <= SEALED_AFTER then
        updates[#updates + 1] = nodes[j]
        updates[#updates + 1] = value
      else
        seal_field(updates, nodes[j], value)
      end
    end
  end
  return updates
end

-- One slot's readings as SeenSlots.slotArgs packs them: `ids`, the node ids
-- joined by a line feed; `counts`, each node's count of readings (packed
-- int32), empty when every node has one; `offsets`, their offsets grouped by
-- node. Returns the node ids, each node's packed offsets, and the 0-based
-- index of each node's first offset (for a list packed in the same order).
local function slot_nodes(ids, counts, offsets)
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
    packed[j] = string.sub(offsets, WIDTH * at + 1, WIDTH * (at + m))
    at = at + m
    from = stop + 1
  end
  return nodes, packed, firsts
end

-- Packed slot offsets as offsets in their hour, the slot starting `base` ms
-- after it: as numbers (the sets before), and packed int32 (the hour hashes).
local function hour_offsets(offsets, base)
  local numbers = {}
  for i = 1, #offsets, WIDTH do numbers[#numbers + 1] = struct.unpack('<I3', offsets, i) + base end
  return numbers
end

local function pack_int32(numbers)
  local packed = {}
  for i = 1, #numbers do packed[i] = struct.pack('<i4', numbers[i]) end
  return table.concat(packed)
end

-- The 1-based indexes of `numbers` (offsets in the hour) that an hour
-- hash's `held` (4-byte offsets, or false) holds, added to `known`.
local function held_in_hour(known, held, numbers)
  if not held or #held == 0 then return known end
  -- Many offsets against a long list: one table, not a scan per offset.
  local lookup = nil
  if #numbers * #held > 16384 then
    lookup = {}
    for i = 1, #held, 4 do lookup[string.sub(held, i, i + 3)] = true end
  end
  for r = 1, #numbers do
    local offset = struct.pack('<i4', numbers[r])
    if (lookup and lookup[offset]) or (not lookup and holds_offset(held, offset, 4)) then known[r] = true end
  end
  return known
end

-- Writes what is owed to the hour hashes: `writes` maps each hash to node ->
-- its whole new value (empty: nothing to write); each hash written expires
-- `ttl` seconds from now.
local function write_hour_hashes(writes, ttl)
  for key, values in pairs(writes) do
    local updates = {}
    for node, value in pairs(values) do
      if #value > 0 then
        updates[#updates + 1] = node
        updates[#updates + 1] = value
      end
    end
    if #updates > 0 then
      call_in_slices('HSET', key, updates, 1, #updates)
      redis.call('EXPIRE', key, ttl)
    end
  end
end
