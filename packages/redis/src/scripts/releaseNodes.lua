#!lua
-- Releases nodes from their district, and from a gateway that named them
-- once it is revoked, so they can join anew. A node that a live gateway
-- names stays with it: revoke that gateway first.
--
-- KEYS[1] node -> district   KEYS[2] node -> gateway   KEYS[3] gateways by name
-- ARGV[1..] node ids
-- Returns {node, gateway} for the first node a live gateway names (nothing
-- is released then), else the number of nodes that had an owner.

--@include credentials

for i = 1, #ARGV do
  local owner = redis.call('HGET', KEYS[2], ARGV[i])
  if owner and is_live(redis.call('HGET', KEYS[3], owner)) then
    return { ARGV[i], owner }
  end
end
local released = 0
for i = 1, #ARGV do
  local d = redis.call('HDEL', KEYS[1], ARGV[i])
  local g = redis.call('HDEL', KEYS[2], ARGV[i])
  if d + g > 0 then
    released = released + 1
  end
end
return released
