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
