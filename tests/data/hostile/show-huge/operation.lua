-- ctx:show of 300 references to one 1 MiB string: the view's C copy (300 MiB) must count
-- against the 8 MiB budget.
local M = {}

function M.lookup(_, ctx)
  local s = string.rep("x", 1024 * 1024)
  local t = {}
  for i = 1, 300 do t[i] = s end
  ctx:show(t)
  return nil, "BREACH: ctx:show kept 300 MiB under an 8 MiB budget"
end

return M
