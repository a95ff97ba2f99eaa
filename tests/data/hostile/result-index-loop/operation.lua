-- The entry returns a table whose metamethods loop forever. The host must read what it needs
-- (found, message, the view) raw, never through a metamethod.
local M = {}

local function forever()
  while true do end
end

function M.lookup()
  return setmetatable({ found = false, message = "contained: result read raw" }, {
    __index = forever, __len = forever, __pairs = forever, __tostring = forever,
    __eq = forever, __concat = forever, __call = forever, __newindex = forever,
  })
end

return M
