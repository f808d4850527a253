#!lua
-- Moves the oldest entries of a shard's catch-up lane into its stream, whole
-- and in order, up to ARGV[3] readings (at least one entry), but only once
-- the gating group (the aggregator's) has fewer than ARGV[2] entries of the
-- stream left to read: a new reading then finds at most one such chunk of
-- old ones ahead of it (CATCHUP in keys.ts). Atomic: an entry is in the
-- lane or in the stream, never both, never neither.
--
-- KEYS[1] the shard's stream   KEYS[2] its catch-up lane
-- ARGV[1] the gating group   ARGV[2] CATCHUP.gateEntries
-- ARGV[3] readings to move at most
-- ARGV[4] the stream's bound in bytes (0: none): nothing moves while the
--         stream holds more (ingest refuses appends then too)
-- Returns { readings moved, entries left in the lane }.

local left = redis.call('XLEN', KEYS[2])
if left == 0 then
  return { 0, 0 }
end

local ok, groups = pcall(redis.call, 'XINFO', 'GROUPS', KEYS[1])
if ok then
  for _, info in ipairs(groups) do
    local name, lag
    for i = 1, #info, 2 do
      if info[i] == 'name' then name = info[i + 1] end
      if info[i] == 'lag' then lag = info[i + 1] end
    end
    -- A lag Redis does not know (after a deletion in the stream) holds nothing back.
    if name == ARGV[1] and lag and lag >= tonumber(ARGV[2]) then
      return { 0, left }
    end
  end
end

local bound = tonumber(ARGV[4])
if bound > 0 and (redis.call('MEMORY', 'USAGE', KEYS[1]) or 0) > bound then
  return { 0, left }
end

local budget = tonumber(ARGV[3])
local moved, ids = 0, {}
for _, entry in ipairs(redis.call('XRANGE', KEYS[2], '-', '+', 'COUNT', 100)) do
  local fields, n = entry[2], 0
  for i = 1, #fields, 2 do
    if fields[i] == 'n' then n = tonumber(fields[i + 1]) end
  end
  if #ids > 0 and moved + n > budget then break end
  redis.call('XADD', KEYS[1], '*', unpack(fields))
  ids[#ids + 1] = entry[1]
  moved = moved + n
end
if #ids == left then
  redis.call('DEL', KEYS[2])
else
  redis.call('XDEL', KEYS[2], unpack(ids))
end
return { moved, left - #ids }
