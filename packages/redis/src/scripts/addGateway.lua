#!lua
-- Registers a gateway: its record by name and by token hash, together.
-- A name that is in use by a gateway that was not revoked is refused.
--
-- KEYS[1] gateways by name   KEYS[2] gateways by token hash
-- ARGV[1] name   ARGV[2] token hash   ARGV[3] record (JSON)
-- Returns 1, or 0 when the name is taken.

local existing = redis.call('HGET', KEYS[1], ARGV[1])
if existing and cjson.decode(existing).revokedAt == nil then
  return 0
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
redis.call('HSET', KEYS[2], ARGV[2], ARGV[3])
return 1
