-- One string.find whose pattern backtracks for tens of seconds (or minutes on a slow build) in
-- a single C call, out of the hook's reach. A pattern step limit must end it.
local M = {}

function M.lookup()
  local s = string.rep("a", 56)
  local found = string.find(s, string.rep("a-", 6) .. "b")
  return nil, "BREACH: the pattern ran to its end (" .. tostring(found) .. ")"
end

return M
