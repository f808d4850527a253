#!lua
-- Advances a shard's watermark (the last entry whose effects are in every
-- dashboard key), only for the holder of the shard's lease: a replica that
-- lost the shard must not move its successor's watermark.
--
-- KEYS[1] lease   KEYS[2] watermark
-- ARGV[1] the acquisition's token   ARGV[2] entry id
-- Returns 1 when written, 0 when the lease is held by another.

if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return 0
end
redis.call('SET', KEYS[2], ARGV[2])
return 1
