-- unpack() is bounded by Lua's C stack: long argument lists go to Redis in
-- slices of 1000.

-- redis.call(command, key, [extra,] items[first..last]), a slice at a time.
local function call_in_slices(command, key, items, first, last, extra)
  for i = first, last, 1000 do
    local j = math.min(i + 999, last)
    if extra == nil then
      redis.call(command, key, unpack(items, i, j))
    else
      redis.call(command, key, extra, unpack(items, i, j))
    end
  end
end
