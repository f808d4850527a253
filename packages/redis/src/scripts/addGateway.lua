#!lua
-- Registers a gateway: its record by name and by token hash, together, and,
-- for a node-scoped gateway, the nodes it names as its own. A name in use by
-- a gateway that was not revoked is refused, and so is a node that another
-- live gateway names. A revoked gateway's name taken again is a new gateway:
-- the old one's nodes that the new one does not name are released.
--
-- KEYS[1] gateways by name   KEYS[2] gateways by token hash   KEYS[3] node -> gateway
-- ARGV[1] name   ARGV[2] token hash   ARGV[3] record (JSON)   ARGV[4..] node ids it names
-- Returns 1; 0 when the name is taken; {node, gateway} for a node another gateway names.

--@include credentials

local existing = redis.call('HGET', KEYS[1], ARGV[1])
if is_live(existing) then
  return 0
end
for i = 4, #ARGV do
  local owner = redis.call('HGET', KEYS[3], ARGV[i])
  if owner and owner ~= ARGV[1] and is_live(redis.call('HGET', KEYS[1], owner)) then
    return { ARGV[i], owner }
  end
end
if existing then
  local named = {}
  for i = 4, #ARGV do
    named[ARGV[i]] = true
  end
  local old = cjson.decode(existing).scope
  if old.kind == 'nodes' then
    for _, node in ipairs(old.nodes) do
      if not named[node] and redis.call('HGET', KEYS[3], node) == ARGV[1] then
        redis.call('HDEL', KEYS[3], node)
      end
    end
  end
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
redis.call('HSET', KEYS[2], ARGV[2], ARGV[3])
for i = 4, #ARGV do
  redis.call('HSET', KEYS[3], ARGV[i], ARGV[1])
end
return 1
