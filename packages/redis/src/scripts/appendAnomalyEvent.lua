#!lua
-- Appends an anomaly event to the `anomalies` stream unless it is there
-- already (a publisher that died before recording its progress sends it
-- again): the event's id is remembered in a sorted set of the same slot.
--
-- KEYS[1] the anomalies stream   KEYS[2] the ids written (sorted set, by time)
-- ARGV[1] event id   ARGV[2] event JSON   ARGV[3] ids and entries kept   ARGV[4] now (ms)
-- Returns 1 when appended, 0 when it was there.

if redis.call('ZADD', KEYS[2], 'NX', ARGV[4], ARGV[1]) == 0 then
  return 0
end
redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[3], '*', 'event', ARGV[2])
redis.call('ZREMRANGEBYRANK', KEYS[2], 0, -tonumber(ARGV[3]) - 1)
return 1
