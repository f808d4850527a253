#!lua
-- Removes forgotten nodes from `nodes:all` and its member set.
--
-- KEYS[1] nodes:all   KEYS[2] {nodes:all}:members
-- ARGV[1..] node ids
-- Returns the number of ids removed.

local removed = 0
for i = 1, #ARGV do
  if redis.call('SREM', KEYS[2], ARGV[i]) == 1 then
    redis.call('LREM', KEYS[1], 0, ARGV[i])
    removed = removed + 1
  end
end
return removed
