-- Limits far over any ceiling (64 GiB, 10^15 instructions, 30 days), then 1 GiB of strings:
-- the host's ceiling must refuse the manifest or kill the run long before.
local M = {}

function M.lookup()
  local chunk = string.rep("x", 1024 * 1024 - 64)
  local keep = {}
  for i = 1, 1024 do keep[i] = chunk .. i end
  return nil, "BREACH: allocated " .. #keep .. " MiB"
end

return M
