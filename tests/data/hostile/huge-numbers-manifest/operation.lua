-- Never runs: the manifest's limits overflow 64 bits and must be refused at load.
local M = {}

function M.lookup()
  return nil, "BREACH: a manifest with overflowing limits was loaded"
end

return M
