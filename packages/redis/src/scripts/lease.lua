#!lua
-- A replica's lease on a shard, held under the token of one acquisition.
-- `acquire` takes a free lease, `renew` extends only its own, `release` gives
-- up only its own.
--
-- KEYS[1] the shard's lease
-- ARGV[1] acquire | renew | release   ARGV[2] token   ARGV[3] lease, ms
-- Returns 1 when the caller holds (or, for release, gave up) the lease, else 0.

local mode, token, ms = ARGV[1], ARGV[2], ARGV[3]
local owner = redis.call('GET', KEYS[1])
if mode == 'acquire' and owner == false then
  redis.call('SET', KEYS[1], token, 'PX', ms)
  return 1
end
if owner ~= token then
  return 0
end
if mode == 'release' then
  redis.call('DEL', KEYS[1])
else
  redis.call('PEXPIRE', KEYS[1], ms)
end
return 1
