#!lua
-- Stores a replica's partial system sums (per shard and range) and returns the
-- totals over every shard, with a version (the server's time, µs) that grows
-- with each call: the totals of a higher version were computed from a later
-- state. A time, not a counter, so that it keeps growing when keys expire.
--
-- KEYS[1] the partials hash (field `<shard>/<range>`: total,active,flow,pressureSum,pressureNodes)
-- ARGV[1] shard count (fields of shards beyond it, left by an older layout, are dropped)
-- ARGV[2] TTL, seconds   ARGV[3..] field, value pairs
-- Returns { version, range, total, active, flow, pressureSum, pressureNodes, range, ... }

--@include slices

local shards = tonumber(ARGV[1])
-- Field, value pairs: slices of 1000 keep them together.
call_in_slices('HSET', KEYS[1], ARGV, 3, #ARGV)
local time = redis.call('TIME')
local version = string.format('%d', tonumber(time[1]) * 1000000 + tonumber(time[2]))
redis.call('EXPIRE', KEYS[1], ARGV[2])

local sums, order = {}, {}
local all = redis.call('HGETALL', KEYS[1])
for i = 1, #all, 2 do
  local shard, range = string.match(all[i], '^(%d+)/(.+)$')
  if shard ~= nil then
    if tonumber(shard) >= shards then
      redis.call('HDEL', KEYS[1], all[i])
    else
      local s = sums[range]
      if s == nil then
        s = { 0, 0, 0, 0, 0 }
        sums[range] = s
        order[#order + 1] = range
      end
      local k = 1
      for v in string.gmatch(all[i + 1], '[^,]+') do
        s[k] = s[k] + tonumber(v)
        k = k + 1
      end
    end
  end
end

local reply = { version }
for _, range in ipairs(order) do
  local s = sums[range]
  reply[#reply + 1] = range
  for k = 1, 5 do
    reply[#reply + 1] = string.format('%.17g', s[k])
  end
end
return reply
