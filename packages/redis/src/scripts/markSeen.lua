#!lua
-- Marks readings as accepted, as appendReadings.lua does (a redrive appends
-- them itself): their offsets join their node's field in each hour's hash,
-- once each, and the hash expires the horizon from now.
--
-- KEYS[1..]  the dedupe hashes (seen:{tag}:<hour>), distinct
-- ARGV[1]    dedupe horizon, seconds
-- ARGV[2..]  per hash, in KEYS order: a count g of nodes, then per node its
--            id and its readings' offsets in the hour (packed int32)
-- Returns the number of offsets that were new.

--@include argvCursor
--@include seenHours
--@include slices

local take = argv_cursor(2)
local marked = 0
for k = 1, #KEYS do
  local g = tonumber(take())
  local nodes, offsets = {}, {}
  for j = 1, g do
    nodes[j], offsets[j] = take(), take()
  end
  local held = call_per_item('HMGET', KEYS[k], nodes)
  local updates = {}
  for j = 1, g do
    local added = fresh_offsets(held[j], offsets[j], nil)
    if #added > 0 then
      marked = marked + #added / 4
      updates[#updates + 1] = nodes[j]
      updates[#updates + 1] = (held[j] or '') .. added
    end
  end
  if #updates > 0 then
    call_in_slices('HSET', KEYS[k], updates, 1, #updates)
    redis.call('EXPIRE', KEYS[k], ARGV[1])
  end
end
return marked
