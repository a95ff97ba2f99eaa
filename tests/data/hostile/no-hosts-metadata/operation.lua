-- No network.hosts in the manifest: the cloud metadata address must be blocked before any
-- connection is tried (a timeout or a refused connection means the request went out).
local M = {}

function M.lookup()
  local resp, err = http.get("http://169.254.169.254/latest/meta-data/", { timeout = 2 })
  if resp then return nil, "BREACH: reached 169.254.169.254" end
  return nil, err.kind .. ": " .. tostring(err.message)
end

return M
