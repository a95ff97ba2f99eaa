-- A table of 300 references to one 1 MiB string: small in Lua, 300 MiB as JSON text. The
-- encoder's C memory must count against the 8 MiB budget.
local M = {}

function M.lookup()
  local s = string.rep("x", 1024 * 1024)
  local t = {}
  for i = 1, 300 do t[i] = s end
  local text = json.encode(t)
  return nil, "BREACH: json.encode made " .. #text .. " bytes under an 8 MiB budget"
end

return M
