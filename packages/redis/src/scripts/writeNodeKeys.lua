#!lua
-- Writes nodes' dashboard keys in one call, each with the TTL. Hashes are
-- replaced field by field (a key of another type, left by an older writer, is
-- deleted and written again); strings are set.
--
-- A hash's values come joined in one argument, each followed by a unit
-- separator (0x1F), and its field names as one of a few field lists shared by
-- the call (a node's `latest` has the same fields as the next node's): one
-- argument instead of hundreds is what makes a pipelined writer fast, and
-- cutting them apart with string.find costs Redis 2.0–2.2 µs a `latest`
-- where decoding the same hashes as JSON cost 3.1–4.4 (docs/benchmarks.md).
-- A hash with the separator
-- in one of its values (free text in metadata can hold one) comes as JSON.
--
-- KEYS[i]  the keys
-- ARGV[1]  TTL, seconds
-- ARGV[2]  the field lists: each one's names joined by ',', lists joined by '\n'
-- ARGV[3]  one byte per key: 0, the key is a string, its value the next
--          string argument; 127, a hash whose fields are the next string
--          argument, a JSON object; else a hash with the field list of that
--          number (1-based), its values the next ones in ARGV[4]
-- ARGV[4]  the values of those hashes, key by key, each followed by 0x1F
-- ARGV[5..] the string arguments, in the order of their keys
-- Returns the number of keys written.

local STRING, JSON_HASH = 0, 127
local ttl, kinds, values = ARGV[1], ARGV[3], ARGV[4]
local find, sub, byte = string.find, string.sub, string.byte

local lists = {}
for line in string.gmatch(ARGV[2], '[^\n]+') do
  local names = {}
  for name in string.gmatch(line, '[^,]+') do
    names[#names + 1] = name
  end
  lists[#lists + 1] = names
end

local at, taken = 1, 4 -- the next value in ARGV[4]; the last string argument taken
local fields = {}
for k = 1, #KEYS do
  local key = KEYS[k]
  local kind = byte(kinds, k)
  if kind == STRING then
    taken = taken + 1
    redis.call('SET', key, ARGV[taken], 'EX', ttl)
  else
    local n = 0
    if kind == JSON_HASH then
      taken = taken + 1
      for field, v in pairs(cjson.decode(ARGV[taken])) do
        fields[n + 1] = field
        fields[n + 2] = v
        n = n + 2
      end
    else
      for _, name in ipairs(lists[kind]) do
        local stop = find(values, '\31', at, true)
        fields[n + 1] = name
        fields[n + 2] = sub(values, at, stop - 1)
        n = n + 2
        at = stop + 1
      end
    end
    -- HSET refuses a key of another type; only then is it deleted and written
    -- again (a TYPE before every HSET cost ~0.7 µs a key, a third of the HSET).
    local written = redis.pcall('HSET', key, unpack(fields, 1, n))
    if type(written) == 'table' and written.err then
      redis.call('DEL', key)
      redis.call('HSET', key, unpack(fields, 1, n))
    end
    redis.call('EXPIRE', key, ttl)
  end
end
return #KEYS
