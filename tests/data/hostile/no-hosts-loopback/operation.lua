-- No network.hosts in the manifest: every request must be blocked, loopback included.
local M = {}

function M.lookup(obj, ctx)
  local resp, err = http.get(ctx.config.target .. "/ioc",
                             { query = { value = obj.value }, headers = { ["X-Api-Key"] = "x" } })
  if resp then return nil, "BREACH: reached 127.0.0.1 without an allow-list" end
  return nil, err.kind .. ": " .. tostring(err.message)
end

return M
