#!lua
-- Writes `system:metrics:{range}` unless a newer version of it is already
-- there (two replicas may race; the later sums must win). A key of another
-- type, left by an older writer, is replaced.
--
-- KEYS[1] system:metrics:{range}   KEYS[2] its version (same slot)
-- ARGV[1] version   ARGV[2] TTL, seconds   ARGV[3..] field, value pairs
-- Returns 1 when written, 0 when a newer version was there.

local version = tonumber(ARGV[1])
local current = tonumber(redis.call('GET', KEYS[2]) or '0')
if current > version then
  return 0
end
local t = redis.call('TYPE', KEYS[1])['ok']
if t ~= 'hash' and t ~= 'none' then
  redis.call('DEL', KEYS[1])
end
redis.call('HSET', KEYS[1], unpack(ARGV, 3))
redis.call('EXPIRE', KEYS[1], ARGV[2])
redis.call('SET', KEYS[2], version, 'EX', ARGV[2])
return 1
