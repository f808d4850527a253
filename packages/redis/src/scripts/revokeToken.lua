#!lua
-- Marks a gateway's or a viewer's token revoked in both indexes, so it is
-- answered with 403 ("revoked") rather than being unknown.
--
-- KEYS[1] records by name   KEYS[2] records by token hash
-- ARGV[1] name   ARGV[2] revocation time (ISO-8601)
-- Returns 1, 0 when there is no such name, 2 when it was already revoked.

local existing = redis.call('HGET', KEYS[1], ARGV[1])
if not existing then
  return 0
end
local record = cjson.decode(existing)
if record.revokedAt ~= nil then
  return 2
end
record.revokedAt = ARGV[2]
local json = cjson.encode(record)
redis.call('HSET', KEYS[1], ARGV[1], json)
redis.call('HSET', KEYS[2], record.tokenHash, json)
return 1
