#!lua
-- A rate limit as the generic cell rate algorithm: a bucket that refills at
-- `rate` units a second up to `burst` units, held as one number, the
-- theoretical arrival time (TAT, microseconds, on Redis' clock so every
-- replica shares it). Takes `cost` units when that many are there, else
-- nothing.
--
-- KEYS[1] the bucket
-- ARGV[1] rate, units per second   ARGV[2] burst, units   ARGV[3] cost, units
-- ARGV[4] '1': only look, take nothing
-- Returns 0 when taken (or there to take), else the microseconds until `cost` units are there.

local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000000 + tonumber(time[2])
local interval = 1000000 / tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then
  tat = now
end
local after = tat + interval * cost
local wait = after - interval * burst - now
if wait > 0 then
  return math.ceil(wait)
end
if ARGV[4] == '1' then
  return 0
end
redis.call('SET', KEYS[1], string.format('%.0f', after), 'PX', math.ceil((after - now) / 1000) + 1)
return 0
