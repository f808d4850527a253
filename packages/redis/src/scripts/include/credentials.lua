-- Gateway and viewer records (JSON, in a registry's by-name hash).

-- Whether a record is there and its token not revoked.
local function is_live(record)
  return record and cjson.decode(record).revokedAt == nil
end
