#!lua
-- Marks readings as accepted, as appendReadings.lua does (a redrive appends
-- them itself): their offsets join their node's field in each slot's hash,
-- once each, and the hash expires the horizon from now.
--
-- KEYS[1..s]  the dedupe hashes (seen:{tag}:s<slot>), distinct
-- KEYS[s+1..] while hour hashes before may hold identities, each slot's hour
--             hash (seen:{tag}:<hour>), in the same order
-- ARGV[1]    dedupe horizon, seconds
-- ARGV[2]    '1' when KEYS holds the hour hashes, else '0'
-- ARGV[3..]  per slot, in KEYS order, four arguments (SeenSlots.slotArgs):
--            its node ids joined by a line feed, each node's count of
--            readings (packed int32; empty when each has one), their
--            offsets in the slot grouped by node (3 bytes each), and how many
--            ms after its hour's start the slot starts
-- Returns the number of offsets that were new.

--@include slices
--@include seenSlots

local withHours = ARGV[2] == '1'
local slots = withHours and #KEYS / 2 or #KEYS
local marked = 0
local hourWrites = {}
for k = 1, slots do
  local arg = 3 + 4 * (k - 1)
  local nodes, offsets = slot_nodes(ARGV[arg], ARGV[arg + 1], ARGV[arg + 2])
  local base = tonumber(ARGV[arg + 3])
  local held = call_per_item('HMGET', KEYS[k], nodes)
  local hourKey, hourUpdates = nil, nil
  if withHours then
    hourKey = KEYS[k + slots]
    hourUpdates = hourWrites[hourKey] or {}
    hourWrites[hourKey] = hourUpdates
    local heldHour = call_per_item('HMGET', hourKey, nodes)
    for j = 1, #nodes do
      if hourUpdates[nodes[j]] == nil then hourUpdates[nodes[j]] = heldHour[j] or '' end
    end
  end
  local addedOf = {}
  for j = 1, #nodes do
    local added = fresh_offsets(held[j], offsets[j], held_in_sealed(KEYS[k], nodes[j], held[j], offsets[j], nil))
    addedOf[j] = added
    if #added > 0 then
      marked = marked + #added / WIDTH
      if withHours then
        hourUpdates[nodes[j]] = hourUpdates[nodes[j]] .. pack_int32(hour_offsets(added, base))
      end
    end
  end
  local updates = field_writes(nodes, held, addedOf)
  if #updates > 0 then
    call_in_slices('HSET', KEYS[k], updates, 1, #updates)
    redis.call('EXPIRE', KEYS[k], ARGV[1])
  end
end
write_hour_hashes(hourWrites, ARGV[1])
return marked
