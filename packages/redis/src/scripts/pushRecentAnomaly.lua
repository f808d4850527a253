#!lua
-- Puts an anomaly at the head of `anomalies:recent` (DATA_MODEL.md: newest
-- first, at most 1000) unless it is there already, and renews the TTL.
--
-- KEYS[1] anomalies:recent   KEYS[2] the ids listed (sorted set, same slot)
-- ARGV[1] anomaly id   ARGV[2] record JSON   ARGV[3] entries kept   ARGV[4] now (ms)   ARGV[5] TTL seconds
-- Returns 1 when pushed, 0 when it was there.

if redis.call('ZADD', KEYS[2], 'NX', ARGV[4], ARGV[1]) == 0 then
  return 0
end
local kept = tonumber(ARGV[3])
redis.call('LPUSH', KEYS[1], ARGV[2])
redis.call('LTRIM', KEYS[1], 0, kept - 1)
redis.call('ZREMRANGEBYRANK', KEYS[2], 0, -kept - 1)
redis.call('EXPIRE', KEYS[1], ARGV[5])
redis.call('EXPIRE', KEYS[2], ARGV[5])
return 1
