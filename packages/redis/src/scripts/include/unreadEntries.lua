-- How many entries of `stream` the group has not read yet, as XINFO GROUPS
-- gave its `lag` and `last-delivered-id`, counting at most `limit`. Redis
-- reports no lag when it cannot tell (a deletion after the group's
-- position); then the entries after that position are counted, up to `limit`.
local function unread_entries(stream, lag, delivered, limit)
  if lag then
    return lag
  end
  return #redis.call('XRANGE', stream, '(' .. delivered, '+', 'COUNT', limit)
end

-- A group's name, last delivered id and lag (false: unknown), from its row of XINFO GROUPS.
local function group_fields(info)
  local name, delivered, lag
  for i = 1, #info, 2 do
    if info[i] == 'name' then name = info[i + 1] end
    if info[i] == 'last-delivered-id' then delivered = info[i + 1] end
    if info[i] == 'lag' then lag = info[i + 1] end
  end
  return name, delivered, lag
end
