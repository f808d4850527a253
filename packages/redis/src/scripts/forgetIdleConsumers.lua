#!lua
-- Removes a group's consumers that hold nothing and have not been heard
-- from for a long time: the names of replaced pods (a Deployment gives each
-- pod a new one), which would otherwise stay listed forever. One script, so
-- no entry can be delivered to a consumer between the check of its pending
-- count and its removal (removing a consumer drops what it has pending).
--
-- KEYS[1] the stream
-- ARGV[1] the group   ARGV[2] least idle time, ms   ARGV[3] the caller's own consumer (kept)
-- Returns the names removed.

local removed = {}
for _, consumer in ipairs(redis.call('XINFO', 'CONSUMERS', KEYS[1], ARGV[1])) do
  local info = {}
  for i = 1, #consumer, 2 do
    info[consumer[i]] = consumer[i + 1]
  end
  if info['name'] ~= ARGV[3] and info['pending'] == 0 and info['idle'] >= tonumber(ARGV[2]) then
    redis.call('XGROUP', 'DELCONSUMER', KEYS[1], ARGV[1], info['name'])
    removed[#removed + 1] = info['name']
  end
end
return removed
