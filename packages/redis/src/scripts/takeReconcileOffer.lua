#!lua
-- Removes a shard's backfill offer once the aggregator has applied it, with
-- its payload, unless a newer run has replaced it meanwhile (then the newer
-- one stays, to be applied next).
--
-- KEYS[1] offer   KEYS[2] the run's payload
-- ARGV[1] the run applied
-- Returns 1 when the offer was removed, 0 when another run holds it.

if redis.call('HGET', KEYS[1], 'run') ~= ARGV[1] then
  redis.call('DEL', KEYS[2])
  return 0
end
redis.call('DEL', KEYS[1], KEYS[2])
return 1
