#!lua
-- Sends one dead letter back through the pipeline, exactly once: it checks
-- that the dead letter still exists, sends the entry back, deletes the dead
-- letter (and those other groups wrote for the same entry) and records what
-- it became, in one step. A second call, or a retry after a lost reply,
-- finds the dead letter gone and changes nothing. This matters because the
-- readings of a new entry written here bypass ingest's identity dedupe
-- (their identities were marked "seen" when ingest first accepted them).
--
-- Who gets the entry again. Each consumer group dead-letters on its own. The
-- groups that dead-lettered the entry (this dead letter's, and the other
-- dead letters of the same entry) have not applied it; every other group of
-- the stream has (it is neither pending there nor unread). Then:
--   * every group that applied it is idempotent (the archiver: one warehouse
--     row per reading), or there is none: a NEW entry is appended to the
--     stream (the repaired readings, or the original's), and every group
--     gets it. Mode `append`. The new entry replaces the original, which is
--     deleted from the stream (every group is done with it; its fields are
--     kept in the link): a later replay of the stream (`streamgauge replay
--     --from -` after wiping state) then finds the readings once, not the
--     original and its copy.
--   * a group that is not idempotent (the aggregator) applied it: a new
--     entry would be counted twice there. Only the original, unchanged, can
--     go back, and only to the groups that dead-lettered it: it is put into
--     their pending lists (XCLAIM ... FORCE, idle long enough that their
--     next scan of pending entries claims it, with a fresh delivery count).
--     Mode `redeliver`. (Those groups are then idempotent ones: the
--     aggregator is never among them, so its applied mark never hides it.)
-- An entry still pending in a group, or not yet read by one, is refused: the
-- group is not done with it, and could still apply it.
--
-- KEYS[1] the shard's dead letters   KEYS[2] the shard's stream
-- KEYS[3] the redrive links (a hash: dead-letter id → what it became, JSON,
--         with the deleted original's fields)
-- KEYS[4] the count of entries deleted from the stream on purpose (so the
--         backfill does not take the original's deletion for trimming)
-- ARGV[1]  the dead letter's id
-- ARGV[2]  'run', or 'plan' (decide and report; change nothing)
-- ARGV[3]  the last dead-letter id the caller's search for the entry's other
--          dead letters covered ('0-0': none); later ones are searched here
-- ARGV[4]  now (ISO-8601), for the links
-- ARGV[5]  idle time, ms, a re-delivered entry gets (the groups' claim threshold)
-- ARGV[6]  where the content comes from: 'original' or 'file'
-- ARGV[7]  the readings to append (a JSON array), '' when there are none
-- ARGV[8]  their count   ARGV[9] their source
-- ARGV[10..] sections, each a count followed by its items: the entry's other
--          dead letters the caller found (ids); the idempotent groups
--          (names); the consumer to re-deliver to per group (group, consumer)
-- Returns { mode, new entry id or '', the groups it goes back to (comma
-- separated), the groups that applied it, the dead-letter ids resolved... }.
-- Errors: 'GONE <id>' (already redriven or dropped), 'REFUSED <reason> <detail>'.

local dead_id, action, scanned, now, idle = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local from, readings, count, source = ARGV[6], ARGV[7], ARGV[8], ARGV[9]

local function record(flat)
  local r = {}
  for i = 1, #flat, 2 do
    r[flat[i]] = flat[i + 1]
  end
  return r
end

--@include entryIds

local found = redis.call('XRANGE', KEYS[1], dead_id, dead_id)
if #found == 0 then
  return redis.error_reply('GONE ' .. dead_id)
end
local letter = record(found[1][2])
local entry = letter['id']
if letter['stream'] ~= KEYS[2] then
  return redis.error_reply('REFUSED stream ' .. tostring(letter['stream']))
end

-- The entry's dead letters, by group.
local dead_ids, dead_groups, seen = {}, {}, {}
local function add(id, fields)
  local r = record(fields)
  if seen[id] or r['stream'] ~= KEYS[2] or r['id'] ~= entry then
    return
  end
  seen[id] = true
  dead_ids[#dead_ids + 1] = id
  dead_groups[r['group']] = true
end
add(dead_id, found[1][2])

--@include argvCursor
local take = argv_cursor(10)
for _ = 1, tonumber(take()) do
  local id = take()
  local rows = redis.call('XRANGE', KEYS[1], id, id)
  if #rows > 0 then
    add(id, rows[1][2])
  end
end
-- Dead letters written since the caller searched (few: it searched just now).
for _, row in ipairs(redis.call('XRANGE', KEYS[1], '(' .. scanned, '+')) do
  add(row[1], row[2])
end
local idempotent = {}
for _ = 1, tonumber(take()) do
  idempotent[take()] = true
end
local consumers = {}
for _ = 1, tonumber(take()) do
  local group, consumer = take(), take()
  consumers[group] = consumer
end

-- Where every group of the stream is with the entry.
local ok, groups = pcall(redis.call, 'XINFO', 'GROUPS', KEYS[2])
if not ok then
  groups = {}
end
local targets, applied, strict = {}, {}, false
for _, flat in ipairs(groups) do
  local g = record(flat)
  local name = g['name']
  if #redis.call('XPENDING', KEYS[2], name, entry, entry, 1) > 0 then
    return redis.error_reply('REFUSED pending ' .. name)
  end
  if dead_groups[name] then
    targets[#targets + 1] = name
  elseif before(g['last-delivered-id'], entry) then
    return redis.error_reply('REFUSED unread ' .. name)
  else
    applied[#applied + 1] = name
    if not idempotent[name] then
      strict = true
    end
  end
end
table.sort(targets)
table.sort(applied)

local mode = strict and 'redeliver' or 'append'
if mode == 'append' and readings == '' then
  return redis.error_reply('REFUSED content ' .. table.concat(applied, ','))
end
if mode == 'redeliver' then
  if from ~= 'original' then
    return redis.error_reply('REFUSED partial ' .. table.concat(applied, ','))
  end
  if #redis.call('XRANGE', KEYS[2], entry, entry) == 0 then
    return redis.error_reply('REFUSED trimmed ' .. table.concat(applied, ','))
  end
  if #targets == 0 then
    return redis.error_reply('REFUSED nogroup ' .. table.concat(applied, ','))
  end
end

local new_entry, kept = '', nil
if action == 'run' then
  if mode == 'append' then
    new_entry = redis.call('XADD', KEYS[2], '*', 'n', count, 'src', source, 'readings', readings)
    local original = redis.call('XRANGE', KEYS[2], entry, entry)
    if #original > 0 then
      kept = record(original[1][2])
      redis.call('XDEL', KEYS[2], entry)
      redis.call('INCR', KEYS[4])
    end
  else
    for _, group in ipairs(targets) do
      redis.call('XCLAIM', KEYS[2], group, consumers[group] or 'dlq-redrive', 0, entry,
        'IDLE', idle, 'RETRYCOUNT', 0, 'FORCE', 'JUSTID')
    end
  end
  local link = cjson.encode({
    at = now, mode = mode, entry = entry, newEntry = new_entry,
    groups = table.concat(targets, ','), from = from, original = kept,
  })
  for _, id in ipairs(dead_ids) do
    redis.call('HSET', KEYS[3], id, link)
  end
  redis.call('XDEL', KEYS[1], unpack(dead_ids))
end

local reply = { mode, new_entry, table.concat(targets, ','), table.concat(applied, ',') }
for _, id in ipairs(dead_ids) do
  reply[#reply + 1] = id
end
return reply
