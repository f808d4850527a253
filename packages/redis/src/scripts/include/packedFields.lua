-- Hash fields packed in one argument (the client's PackedHashWrites): per
-- hash `[fields u32]`, then per field `[name length u16][name][value length
-- u32][value]`, little-endian. One argument instead of two per field is
-- what keeps a commit of thousands of nodes cheap to send.
local function packed_fields(packed)
  local at = 1
  local reader = {}
  function reader.count()
    local n
    n, at = struct.unpack('<I4', packed, at)
    return n
  end
  function reader.field()
    local name, value
    name, value, at = struct.unpack('<I2c0I4c0', packed, at)
    return name, value
  end
  return reader
end
