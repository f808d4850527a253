#!lua
-- Registers a dashboard viewer: its record by name and by token hash,
-- together. A name in use by a viewer that was not revoked is refused; a
-- revoked one's name taken again is a new viewer (the old token stays
-- revoked).
--
-- KEYS[1] viewers by name   KEYS[2] viewers by token hash
-- ARGV[1] name   ARGV[2] token hash   ARGV[3] record (JSON)
-- Returns 1; 0 when the name is taken.

--@include credentials

if is_live(redis.call('HGET', KEYS[1], ARGV[1])) then
  return 0
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
redis.call('HSET', KEYS[2], ARGV[2], ARGV[3])
return 1
