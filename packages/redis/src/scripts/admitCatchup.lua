#!lua
-- Moves the oldest entries of a shard's catch-up lane into its stream, whole
-- and in order, up to ARGV[3] readings (at least one entry, at most 100),
-- but only while the gating group (the aggregator's) has fewer than ARGV[2]
-- entries of the stream left to read: the caller's next read takes them
-- all, and the moved entries come behind them (CATCHUP in keys.ts). Atomic:
-- an entry is in the lane or in the stream, never both, never neither. The
-- bound on the stream and its lane together (STREAM_MAX_MB) is ingest's to
-- keep: a move changes neither.
--
-- KEYS[1] the shard's stream   KEYS[2] its catch-up lane
-- KEYS[3] the lane's nodes (node id → its last entry in the lane): a node
--         whose last entry moves leaves it, and its readings go to the
--         stream again
-- ARGV[1] the gating group   ARGV[2] entries it may have left to read (its read's COUNT)
-- ARGV[3] readings to move at most
-- Returns { readings moved, entries left in the lane }.

--@include unreadEntries
--@include entryIds
--@include slices

local left = redis.call('XLEN', KEYS[2])
if left == 0 then
  -- Nodes listed by entries an aggregator before the list moved.
  redis.call('DEL', KEYS[3])
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
local moved, ids = 0, {}
for _, entry in ipairs(redis.call('XRANGE', KEYS[2], '-', '+', 'COUNT', 100)) do
  local fields, n, kept, nodes = entry[2], 0, {}, nil
  for i = 1, #fields, 2 do
    if fields[i] == 'n' then n = tonumber(fields[i + 1]) end
    if fields[i] == 'nodes' then
      nodes = fields[i + 1]
    else
      kept[#kept + 1] = fields[i]
      kept[#kept + 1] = fields[i + 1]
    end
  end
  if #ids > 0 and moved + n > budget then break end
  -- Marked as the lane's: the aggregator applies the entries before it apart.
  kept[#kept + 1] = 'lane'
  kept[#kept + 1] = 'catchup'
  redis.call('XADD', KEYS[1], '*', unpack(kept))
  ids[#ids + 1] = entry[1]
  moved = moved + n
  if nodes and nodes ~= '' then
    local listed, gone = {}, {}
    for id in string.gmatch(nodes, '[^\n]+') do listed[#listed + 1] = id end
    local last = call_per_item('HMGET', KEYS[3], listed)
    for i, id in ipairs(listed) do
      if last[i] and not before(entry[1], last[i]) then gone[#gone + 1] = id end
    end
    if #gone > 0 then call_in_slices('HDEL', KEYS[3], gone, 1, #gone) end
  end
end
if #ids == left then
  redis.call('DEL', KEYS[2], KEYS[3])
else
  redis.call('XDEL', KEYS[2], unpack(ids))
end
return { moved, left - #ids }
