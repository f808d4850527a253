#!lua
-- Adds node ids to the dashboard's `nodes:all` list, each once, and renews
-- the list's TTL. A member set in the list's slot remembers who is listed; a
-- list without its set (written by the old system, with duplicates) is
-- rebuilt from scratch.
--
-- KEYS[1] nodes:all   KEYS[2] {nodes:all}:members
-- ARGV[1] TTL, seconds   ARGV[2..] node ids
-- Returns the number of ids added.

if redis.call('EXISTS', KEYS[2]) == 0 then
  redis.call('DEL', KEYS[1])
end
local added = 0
for i = 2, #ARGV do
  if redis.call('SADD', KEYS[2], ARGV[i]) == 1 then
    redis.call('RPUSH', KEYS[1], ARGV[i])
    added = added + 1
  end
end
if redis.call('EXISTS', KEYS[1]) == 1 then
  redis.call('EXPIRE', KEYS[1], ARGV[1])
  redis.call('EXPIRE', KEYS[2], ARGV[1])
end
return added
