#!lua
-- The live aggregator replicas: each renews its own entry (expiry on the
-- server's clock, so replicas' clocks need not agree); expired entries go.
--
-- KEYS[1] the replica set (sorted set: token → expiry, ms)
-- ARGV[1] join | leave   ARGV[2] token   ARGV[3] time to live, ms
-- Returns the live tokens.

local mode, token, ttl = ARGV[1], ARGV[2], tonumber(ARGV[3])
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
if mode == 'join' then
  redis.call('ZADD', KEYS[1], now + ttl, token)
else
  redis.call('ZREM', KEYS[1], token)
end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
redis.call('PEXPIRE', KEYS[1], ttl * 10)
return redis.call('ZRANGE', KEYS[1], 0, -1)
