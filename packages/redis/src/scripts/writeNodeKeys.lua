#!lua
-- Writes nodes' dashboard keys in one call, each with the TTL. Hashes are
-- replaced field by field (a key of another type, left by an older writer, is
-- deleted and written again); strings are set. The hashes come as one JSON document: one
-- argument instead of hundreds is what makes a pipelined writer fast. Strings
-- (the 7-day series, kilobytes of JSON themselves) come as arguments of their
-- own: decoding them as JSON strings would be most of the call's time.
--
-- KEYS[i]  the keys
-- ARGV[1]  TTL, seconds
-- ARGV[2]  JSON array, one item per key: an object of fields (a hash), or a
--          number n: the key is a string, its value ARGV[2 + n]
-- Returns the number of keys written.

local ttl = ARGV[1]
local values = cjson.decode(ARGV[2])
for k = 1, #KEYS do
  local key = KEYS[k]
  local value = values[k]
  if type(value) == 'number' then
    redis.call('SET', key, ARGV[2 + value], 'EX', ttl)
  else
    local pairs_ = {}
    for field, v in pairs(value) do
      pairs_[#pairs_ + 1] = field
      pairs_[#pairs_ + 1] = v
    end
    -- HSET refuses a key of another type; only then is it deleted and written
    -- again (a TYPE before every HSET cost ~0.7 µs a key, a third of the HSET).
    local written = redis.pcall('HSET', key, unpack(pairs_))
    if type(written) == 'table' and written.err then
      redis.call('DEL', key)
      redis.call('HSET', key, unpack(pairs_))
    end
    redis.call('EXPIRE', key, ttl)
  end
end
return #KEYS
