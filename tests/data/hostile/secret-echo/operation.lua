-- The plugin's own API key comes back from a server (an echo of the request's headers); the
-- script then logs it, raises it and writes it reversed, upper-cased and split in two. None of
-- these may appear in any output or in the library.
local M = {}

function M.lookup(_, ctx)
  local resp, err = http.get(ctx.config.echo .. "/echo", { headers = { ["X-Api-Key"] = ctx.secret("api_key") } })
  if not resp then return nil, "no echo: " .. err.kind .. ": " .. tostring(err.message) end
  local key = resp:json().headers["x-api-key"]
  local rev, up, low = key:reverse(), key:upper(), key:lower()
  local a, b = key:sub(1, #key // 2), key:sub(#key // 2 + 1)
  log.info("reversed %s upper %s lower %s split %s / %s", rev, up, low, a, b)
  log.warn(rev .. " " .. up)
  print(a, b)
  ctx:attribute("Echo Reversed", rev)
  ctx:attribute("Echo Upper", up)
  ctx:attribute("Echo Half", a)
  ctx:attribute("Echo Other Half", b)
  ctx:tag(low)
  ctx:show{ reversed = rev, upper = up, half = a, other = b }
  error("echo: " .. rev .. " " .. up .. " " .. a .. " " .. b)
end

return M
