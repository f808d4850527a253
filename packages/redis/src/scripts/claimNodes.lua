#!lua
-- Binds nodes that have no district yet to the district their first reading
-- names, at most a number of new nodes per gateway per hour, and returns who
-- owns each node. A node that a gateway names (KEYS[2]) is bound only by
-- that gateway: a district gateway cannot take it. The hour is Redis' own,
-- so every ingest replica counts in the same one.
--
-- KEYS[1] node -> district   KEYS[2] node -> gateway
-- KEYS[3] prefix of this gateway's hourly counters (same slot; the hour is appended)
-- ARGV[1] the claiming gateway   ARGV[2] new nodes it may bind per hour (-1: no cap)
-- ARGV[3..] pairs: node id, district to bind it to ('': none)
-- Returns, per pair, {district or '', gateway or ''}.

local cap = tonumber(ARGV[2])
local counter = KEYS[3] .. ':' .. math.floor(tonumber(redis.call('TIME')[1]) / 3600)
local bound = tonumber(redis.call('GET', counter) or '0')
local owners = {}
for i = 3, #ARGV, 2 do
  local node, want = ARGV[i], ARGV[i + 1]
  local district = redis.call('HGET', KEYS[1], node)
  local gateway = redis.call('HGET', KEYS[2], node)
  if not district and want ~= '' and (not gateway or gateway == ARGV[1]) and (cap < 0 or bound < cap) then
    redis.call('HSET', KEYS[1], node, want)
    district = want
    if cap >= 0 then
      bound = bound + 1
      redis.call('INCR', counter)
      redis.call('EXPIRE', counter, 7200)
    end
  end
  owners[#owners + 1] = { district or '', gateway or '' }
end
return owners
