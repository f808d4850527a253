-- Hash fields packed in arguments (the client's PackedHashWrites): per
-- hash `[fields u32]`, then per field `[name length u16][name][value length
-- u32][value]`, little-endian, in `chunks` arguments taken one after the
-- other (a count or a field never spans two). A few arguments instead of
-- two per field is what keeps a commit of thousands of nodes cheap to send.
local function packed_fields(take, chunks)
  local packed, at, left = '', 1, chunks
  local function chunk()
    while at > #packed and left > 0 do
      packed, at, left = take(), 1, left - 1
    end
  end
  local reader = {}
  function reader.count()
    chunk()
    local n
    n, at = struct.unpack('<I4', packed, at)
    return n
  end
  function reader.field()
    chunk()
    local name, value
    name, value, at = struct.unpack('<I2c0I4c0', packed, at)
    return name, value
  end
  -- Takes what is left of the chunks (none once every hash is read).
  function reader.finish()
    while left > 0 do
      take()
      left = left - 1
    end
  end
  return reader
end
