-- Gateway records (JSON, in the registry's by-name hash).

-- Whether a record is there and its gateway not revoked.
local function is_live(record)
  return record and cjson.decode(record).revokedAt == nil
end
