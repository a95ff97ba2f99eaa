-- network.hosts names {config.nope}: the manifest must be refused naming the field, rather than
-- the entry being dropped (or kept as text) and the plugin loaded.
local M = {}

function M.lookup(obj, ctx)
  local resp = http.get(ctx.config.target .. "/ioc",
                        { query = { value = obj.value }, headers = { ["X-Api-Key"] = "x" } })
  if resp then return nil, "BREACH: loaded and reached the network with an unknown {config.nope}" end
  return nil, "BREACH: a manifest with an unknown {config.nope} was loaded"
end

return M
