#!lua
-- Appends one request's validated readings for one stream shard, skipping every
-- reading whose identity (node, event time) was accepted within the dedupe
-- horizon, including repeats inside the batch itself.
--
-- All or nothing: the shebang makes Redis refuse the whole script up front when
-- it is out of memory, and XADD runs before any identity is marked as seen, so a
-- failure can never leave a reading marked "seen" without being in the stream
-- (which would turn the gateway's retry into a silent loss).
--
-- KEYS[1]   the shard's stream
-- KEYS[2..] the dedupe sets (seen:{tag}:<node>:<hour>) of this batch, distinct
-- ARGV[1]   MINID for approximate trimming: entries older than this arrival time go
-- ARGV[2]   dedupe horizon, seconds: a set expires this long after its last acceptance
-- ARGV[3]   the source (gateway name)
-- ARGV[4..] one triple per reading: index of its set in KEYS, ms offset in the hour, JSON
-- Returns { accepted, duplicates, entry id or false }.

local fresh, perKey, inBatch = {}, {}, {}
local accepted, duplicates = 0, 0

for i = 4, #ARGV, 3 do
  local k = tonumber(ARGV[i])
  local member = ARGV[i + 1]
  local id = ARGV[i] .. ':' .. member
  if inBatch[id] or redis.call('SISMEMBER', KEYS[k], member) == 1 then
    duplicates = duplicates + 1
  else
    inBatch[id] = true
    accepted = accepted + 1
    fresh[accepted] = ARGV[i + 2]
    local members = perKey[k]
    if members == nil then
      members = {}
      perKey[k] = members
    end
    members[#members + 1] = member
  end
end

if accepted == 0 then
  return { 0, duplicates, false }
end

local entry = redis.call('XADD', KEYS[1], 'MINID', '~', ARGV[1], '*',
  'n', accepted, 'src', ARGV[3], 'readings', '[' .. table.concat(fresh, ',') .. ']')

-- unpack() is bounded by Lua's C stack, so large sets are added in chunks.
for k, members in pairs(perKey) do
  for first = 1, #members, 1000 do
    redis.call('SADD', KEYS[k], unpack(members, first, math.min(first + 999, #members)))
  end
  redis.call('EXPIRE', KEYS[k], ARGV[2])
end

return { accepted, duplicates, entry }
