-- unpack() is bounded by Lua's C stack: long argument lists go to Redis in
-- slices of 1000.

-- redis.call(command, key, [extra,] items[first..last]), a slice at a time;
-- the sum of the replies (for commands that count what they did).
local function call_in_slices(command, key, items, first, last, extra)
  local total = 0
  for i = first, last, 1000 do
    local j = math.min(i + 999, last)
    local reply
    if extra == nil then
      reply = redis.call(command, key, unpack(items, i, j))
    else
      reply = redis.call(command, key, extra, unpack(items, i, j))
    end
    if type(reply) == 'number' then total = total + reply end
  end
  return total
end

-- redis.call(command, key, items...) for a command with one reply per item
-- (HMGET, SMISMEMBER), in slices (unpack() is bounded by Lua's C stack): the
-- replies as one list.
local function call_per_item(command, key, items)
  if #items == 0 then return {} end
  if #items <= 1000 then return redis.call(command, key, unpack(items)) end
  local replies = {}
  for i = 1, #items, 1000 do
    local part = redis.call(command, key, unpack(items, i, math.min(i + 999, #items)))
    for q = 1, #part do replies[i + q - 1] = part[q] end
  end
  return replies
end
