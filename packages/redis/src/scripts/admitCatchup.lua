#!lua
-- Moves the oldest entries of one of a shard's catch-up lanes (the one whose
-- first entry is the oldest) into its stream, whole and in order, up to
-- ARGV[3] readings (at least one entry, at most MAX_ENTRIES), but only while
-- the gating group (the aggregator's) has fewer than ARGV[2] entries of the
-- stream left to read: the caller's next read takes them, and the moved
-- entries come behind them (CATCHUP in keys.ts). One lane a move: a lane
-- holds a part of the nodes, so a chunk holds several readings of each
-- (docs/ingest.md). Atomic: an entry is in a lane or in the stream, never
-- both, never neither. The bound on the stream and its lanes together
-- (STREAM_MAX_MB) is ingest's to keep: a move changes neither.
--
-- KEYS[1] the shard's stream   KEYS[2..#KEYS-1] its catch-up lanes
-- KEYS[#KEYS] the lanes' nodes (node id → its last entry in its lane),
--         deleted with the lanes once all are empty. Not kept up as entries
--         move: a node whose last entry is older than its lane's first has
--         left it (appendReadings.lua), its readings go to the stream again.
--         Keeping it up cost a lookup per node of every entry moved: with
--         the whole lane read below, 180 ms of Redis, holding every other
--         client, per chunk of 50,000 readings (test/bench/laneMove.ts).
-- ARGV[1] the gating group   ARGV[2] entries it may have left to read (its read's COUNT)
-- ARGV[3] readings to move at most
-- Returns { readings moved, entries left in the lane }.

--@include unreadEntries

--@include entryIds
--@include slices

-- Entries a move takes at most: a chunk of AGGREGATOR_CATCHUP_READINGS in
-- entries of a part of a request each (a request's late readings go to
-- several lanes).
local MAX_ENTRIES = 500

local nodes = KEYS[#KEYS]
local left, lane, laneLeft, oldest = 0, nil, 0, nil
for k = 2, #KEYS - 1 do
  local length = redis.call('XLEN', KEYS[k])
  if length > 0 then
    left = left + length
    local first = redis.call('XRANGE', KEYS[k], '-', '+', 'COUNT', 1)[1][1]
    if oldest == nil or before(first, oldest) then
      lane, laneLeft, oldest = KEYS[k], length, first
    end
  end
end
if left == 0 then
  -- A list of nodes without its lanes (deleted by hand): none is in them.
  redis.call('DEL', nodes)
  return { 0, 0 }
end

local limit = tonumber(ARGV[2])
local ok, groups = pcall(redis.call, 'XINFO', 'GROUPS', KEYS[1])
if ok then
  for _, info in ipairs(groups) do
    local name, delivered, lag = group_fields(info)
    if name == ARGV[1] and unread_entries(KEYS[1], lag, delivered, limit) >= limit then
      return { 0, left }
    end
  end
end

local budget = tonumber(ARGV[3])
local moved, ids, from, full = 0, {}, '-', false
-- In pages: an entry read is copied into the script whether it moves or not
-- (a chunk of 50,000 readings is ~400 entries when requests of 1000
-- readings split over eight lanes; in a scratch run with entries of 1000,
-- moving one took 41–43 ms reading 100 entries at once, 9–10 ms in pages
-- of 10).
while not full and #ids < MAX_ENTRIES do
  local page = redis.call('XRANGE', lane, from, '+', 'COUNT', math.min(10, MAX_ENTRIES - #ids))
  if #page == 0 then break end
  for _, entry in ipairs(page) do
    local fields, n, kept = entry[2], 0, {}
    for i = 1, #fields, 2 do
      if fields[i] == 'n' then n = tonumber(fields[i + 1]) end
      -- An entry of an earlier version lists its nodes: the stream does not need them.
      if fields[i] ~= 'nodes' then
        kept[#kept + 1] = fields[i]
        kept[#kept + 1] = fields[i + 1]
      end
    end
    if #ids > 0 and moved + n > budget then
      full = true
      break
    end
    -- Marked as the lane's: the aggregator applies the entries before it apart.
    kept[#kept + 1] = 'lane'
    kept[#kept + 1] = 'catchup'
    redis.call('XADD', KEYS[1], '*', unpack(kept))
    ids[#ids + 1] = entry[1]
    moved = moved + n
  end
  from = '(' .. page[#page][1]
end
if #ids == left then
  redis.call('DEL', lane, nodes)
elseif #ids == laneLeft then
  redis.call('DEL', lane)
else
  call_in_slices('XDEL', lane, ids, 1, #ids)
end
return { moved, left - #ids }
