-- operation.lua of log-probe (integration.net_log): four GETs, the key in a header, a plain
-- config value in a credential-named query parameter (apikey=); a failed GET raises.
local M = {}
local function get(ctx, value)
  local resp, err = http.get(ctx.config.base_url .. "/ioc", {
    query = { value = value, apikey = ctx.config.token },
    headers = { ["X-Api-Key"] = ctx.secret("api_key") } })
  if not resp then error(err.message) end
  return resp
end
function M.probe(obj, ctx)
  for _, v in ipairs({ obj.value, "198.51.100.2", "198.51.100.3", obj.value }) do
    get(ctx, v)
  end
  log.info("probe of %s done", obj.value)
  ctx:attribute("Probed", "4")
end
return M
