#!lua
-- Commits one batch of one shard: the nodes' changed state, the consumer
-- group's acknowledgements and the dead letters, all or nothing. Only the
-- lease holder may commit (a replica that lost its lease while paused must
-- not overwrite its successor's state), and a commit whose reply was lost is
-- not applied twice when retried (the commit id is remembered). A caller
-- with no state (the archiver: its sink is idempotent) passes an empty token
-- and no nodes; then there is no lease to check.
--
-- The applied mark (KEYS[8], for a caller with state): every entry up to it
-- is in the state (or was dead-lettered). An entry at or below it delivered
-- again (`streamgauge replay`) is not applied twice. It advances to the
-- group's position, but never past an entry still pending in the group
-- (delivered, not yet applied: a lost read's, a failing one's, one in hand).
--
-- KEYS[1] lease   KEYS[2] last commit id   KEYS[3] stream   KEYS[4] node set
-- KEYS[5] counters   KEYS[6] dead letters   KEYS[7] pending errors
-- KEYS[8] applied mark (a string; unused when ARGV[6] is '0')
-- KEYS[9..] the state hashes of the changed nodes, then of the removed ones,
--   then (only when there are events) the anomaly outbox stream
-- ARGV: token, commit id, TTL seconds, group, dead letters kept, whether to
-- keep the applied mark ('1' or '0'), the number of changed nodes, the
-- number of arguments their fields are packed in and those arguments (see
-- packed_fields), then sections, each a count followed by its items:
--   added node ids; removed node ids; counters (name, by);
--   dead letters (id, error, deliveries); errors to remember (id, error);
--   entry ids to acknowledge; anomaly events (JSON) for the outbox
-- Returns { 1, or 0 when this commit was already applied; the applied mark or false }.

local token, commit_id, ttl, group, kept = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local keeps_mark = ARGV[6] == '1'
local NODE_KEYS = 8
if token ~= '' then
  local owner = redis.call('GET', KEYS[1])
  if owner ~= token then
    return redis.error_reply('LEASE_LOST ' .. KEYS[1] .. ' is held by ' .. tostring(owner))
  end
end
if redis.call('GET', KEYS[2]) == commit_id then
  return { 0, keeps_mark and redis.call('GET', KEYS[8]) }
end

--@include argvCursor
local take = argv_cursor(7)
--@include slices
--@include entryIds

local changed = tonumber(take())
--@include packedFields
local next_fields = packed_fields(take, tonumber(take()))
-- One pair of tables for every node (a pair each was garbage Lua collected),
-- filled up to `s` and `g`: what is past them is the node before's.
local sets, gone = {}, {}
for n = 1, changed do
  local key = KEYS[NODE_KEYS + n]
  -- An empty value deletes its field (no state is ever encoded as nothing).
  local s, g = 0, 0
  for _ = 1, next_fields.count() do
    local field, value = next_fields.field()
    if value == '' then
      g = g + 1
      gone[g] = field
    else
      sets[s + 1] = field
      sets[s + 2] = value
      s = s + 2
    end
  end
  -- A node with one changed field (its head: the usual commit) needs no slices.
  local added = 0
  if s == 2 then
    added = redis.call('HSET', key, sets[1], sets[2])
  elseif s > 0 then
    added = call_in_slices('HSET', key, sets, 1, s)
  end
  if g > 0 then
    call_in_slices('HDEL', key, gone, 1, g)
  end
  -- The TTL is set when the hash gains or loses a field, not at every
  -- commit (an EXPIRE was a sixth of a node's commit): a new node's hash
  -- gets it, and a node receiving readings changes fields within minutes
  -- (its recent panes `t<ring>` come and go as its 1-minute panes fill),
  -- far inside a TTL of days.
  if added > 0 or g > 0 then
    redis.call('EXPIRE', key, ttl)
  end
end
next_fields.finish()

local added = {}
for i = 1, tonumber(take()) do
  added[i] = take()
end
if #added > 0 then
  call_in_slices('SADD', KEYS[4], added, 1, #added)
end

local removed = {}
for i = 1, tonumber(take()) do
  removed[i] = take()
  redis.call('DEL', KEYS[NODE_KEYS + changed + i])
end
if #removed > 0 then
  call_in_slices('SREM', KEYS[4], removed, 1, #removed)
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
  call_in_slices('XACK', KEYS[3], acks, 1, #acks, group)
  if redis.call('EXISTS', KEYS[7]) == 1 then
    call_in_slices('HDEL', KEYS[7], acks, 1, #acks)
  end
end

local events = tonumber(take() or '0')
if events > 0 then
  local outbox = KEYS[#KEYS]
  for _ = 1, events do
    redis.call('XADD', outbox, 'MAXLEN', '~', kept, '*', 'event', take())
  end
end

local mark = false
if keeps_mark then
  mark = redis.call('GET', KEYS[8])
  -- Every entry the group delivered is acknowledged (applied, or
  -- dead-lettered) or still pending; the mark goes up to the group's
  -- position, or to just before the first entry after it still pending.
  local ok, groups = pcall(redis.call, 'XINFO', 'GROUPS', KEYS[3])
  local delivered = nil
  if ok then
    for _, info in ipairs(groups) do
      for i = 1, #info, 2 do
        if info[i] == 'name' and info[i + 1] ~= group then break end
        if info[i] == 'last-delivered-id' then delivered = info[i + 1] end
      end
    end
  end
  if delivered and delivered ~= '0-0' and (not mark or before(mark, delivered)) then
    local next_mark = delivered
    local held = redis.call('XPENDING', KEYS[3], group, mark and ('(' .. mark) or '-', delivered, 1)
    if held[1] then
      next_mark = previous(held[1][1])
    end
    if next_mark and (not mark or before(mark, next_mark)) then
      mark = next_mark
      redis.call('SET', KEYS[8], mark)
    end
  end
  if mark then
    redis.call('EXPIRE', KEYS[8], ttl)
  end
end

redis.call('SET', KEYS[2], commit_id)
return { 1, mark }
