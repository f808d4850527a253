-- Stream entry ids (`<ms>-<seq>`), compared and stepped as Redis orders them.

-- Whether id `a` comes before id `b`.
local function before(a, b)
  local am, as = string.match(a, '^(%d+)-(%d+)$')
  local bm, bs = string.match(b, '^(%d+)-(%d+)$')
  am, as, bm, bs = tonumber(am), tonumber(as), tonumber(bm), tonumber(bs)
  return am < bm or (am == bm and as < bs)
end

-- The id just before `id` (false before the first possible one).
local function previous(id)
  local ms, seq = string.match(id, '^(%d+)-(%d+)$')
  if seq ~= '0' then
    return ms .. '-' .. string.format('%.0f', tonumber(seq) - 1)
  end
  if ms ~= '0' then
    return string.format('%.0f', tonumber(ms) - 1) .. '-18446744073709551615'
  end
  return false
end
