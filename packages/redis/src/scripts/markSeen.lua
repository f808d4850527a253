#!lua
-- Marks readings as accepted, as appendReadings.lua does (a redrive appends
-- them itself): their offsets join their node's field in each hour's hash,
-- once each, and the hash expires the horizon from now.
--
-- KEYS[1..]  the dedupe hashes (seen:{tag}:<hour>), distinct
-- ARGV[1]    dedupe horizon, seconds
-- ARGV[2..]  per hash, in KEYS order, three arguments (SeenHours.hourArgs):
--            its node ids joined by a line feed, each node's count of
--            readings (packed int32; empty when each has one), and their
--            offsets in the hour grouped by node (packed int32)
-- Returns the number of offsets that were new.

--@include seenHours
--@include slices

local marked = 0
for k = 1, #KEYS do
  local nodes, offsets = hour_nodes(ARGV[3 * k - 1], ARGV[3 * k], ARGV[3 * k + 1])
  local held = call_per_item('HMGET', KEYS[k], nodes)
  local updates = {}
  for j = 1, #nodes do
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
