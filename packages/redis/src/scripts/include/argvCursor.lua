-- Scripts whose ARGV holds counted lists read it front to back: take() returns
-- the next argument (nil past the end), starting at ARGV[first].
local function argv_cursor(first)
  local at = first
  return function()
    local v = ARGV[at]
    at = at + 1
    return v
  end
end
