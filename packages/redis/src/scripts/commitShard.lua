#!lua
-- Commits one batch of one shard: the nodes' changed state, the consumer
-- group's acknowledgements and the dead letters, all or nothing. Only the
-- lease holder may commit (a replica that lost its lease while paused must
-- not overwrite its successor's state), and a commit whose reply was lost is
-- not applied twice when retried (the commit id is remembered). A caller
-- with no state (the archiver: its sink is idempotent) passes an empty token
-- and no nodes; then there is no lease to check.
--
-- KEYS[1] lease   KEYS[2] last commit id   KEYS[3] stream   KEYS[4] node set
-- KEYS[5] counters   KEYS[6] dead letters   KEYS[7] pending errors
-- KEYS[8..] the state hashes of the changed nodes, then of the removed ones,
--   then (only when there are events) the anomaly outbox stream
-- ARGV: token, commit id, TTL seconds, group, dead letters kept, then sections,
-- each a count followed by its items:
--   per changed node: field count, then field, value pairs
--   added node ids; removed node ids; counters (name, by);
--   dead letters (id, error, deliveries); errors to remember (id, error);
--   entry ids to acknowledge; anomaly events (JSON) for the outbox
-- Returns 1, or 0 when this commit was already applied.

local token, commit_id, ttl, group, kept = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
if token ~= '' then
  local owner = redis.call('GET', KEYS[1])
  if owner ~= token then
    return redis.error_reply('LEASE_LOST ' .. KEYS[1] .. ' is held by ' .. tostring(owner))
  end
end
if redis.call('GET', KEYS[2]) == commit_id then
  return 0
end

local at = 6
local function take()
  local v = ARGV[at]
  at = at + 1
  return v
end
-- Large argument lists go out in slices: unpack() has a stack limit.
local function call_chunked(command, key, items)
  for i = 1, #items, 1000 do
    redis.call(command, key, unpack(items, i, math.min(i + 999, #items)))
  end
end

local changed = tonumber(take())
for n = 1, changed do
  local key = KEYS[7 + n]
  local fields = tonumber(take())
  if fields > 0 then
    local pairs_ = {}
    for f = 1, fields * 2 do
      pairs_[f] = take()
    end
    call_chunked('HSET', key, pairs_)
  end
  redis.call('EXPIRE', key, ttl)
end

local added = {}
for i = 1, tonumber(take()) do
  added[i] = take()
end
if #added > 0 then
  call_chunked('SADD', KEYS[4], added)
end

local removed = {}
for i = 1, tonumber(take()) do
  removed[i] = take()
  redis.call('DEL', KEYS[7 + changed + i])
end
if #removed > 0 then
  call_chunked('SREM', KEYS[4], removed)
end

for _ = 1, tonumber(take()) do
  local name, by = take(), take()
  redis.call('HINCRBY', KEYS[5], name, by)
end

for _ = 1, tonumber(take()) do
  local id, err, deliveries = take(), take(), take()
  redis.call('XADD', KEYS[6], 'MAXLEN', '~', kept, '*',
    'stream', KEYS[3], 'id', id, 'group', group, 'error', err, 'deliveries', deliveries)
  redis.call('XACK', KEYS[3], group, id)
  redis.call('HDEL', KEYS[7], id)
end

for _ = 1, tonumber(take()) do
  local id, err = take(), take()
  redis.call('HSET', KEYS[7], id, err)
end

local acks = {}
for i = 1, tonumber(take()) do
  acks[i] = take()
end
if #acks > 0 then
  for i = 1, #acks, 1000 do
    local slice = { unpack(acks, i, math.min(i + 999, #acks)) }
    redis.call('XACK', KEYS[3], group, unpack(slice))
    if redis.call('EXISTS', KEYS[7]) == 1 then
      redis.call('HDEL', KEYS[7], unpack(slice))
    end
  end
end

local events = tonumber(take() or '0')
if events > 0 then
  local outbox = KEYS[#KEYS]
  for _ = 1, events do
    redis.call('XADD', outbox, 'MAXLEN', '~', kept, '*', 'event', take())
  end
end

redis.call('SET', KEYS[2], commit_id)
return 1
