-- example.util: a shared module of the test plugins (required as "example.util").
local M = {}
function M.score(n)
  n = tonumber(n) or 0
  if n > 10 then n = 10 end
  return math.floor(n)
end
return M
