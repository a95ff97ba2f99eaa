-- ctx:show of 300 references to one 1 MiB string: the view's C copy (300 MiB) must count
-- against the 8 MiB budget. A bulk run keeps only the outcome of a show (found, message), so
-- there the show costs nothing and the run ends with its own reason; the runner's peak-RSS
-- bound says whether anything was copied.
local M = {}

function M.lookup(_, ctx)
  local s = string.rep("x", 1024 * 1024)
  local t = {}
  for i = 1, 300 do t[i] = s end
  ctx:show(t)
  return nil, "shown without a copy"
end

return M
