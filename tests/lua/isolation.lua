-- isolation.lua: a plugin that tries to read secrets that are not its own, for
-- tests/unit/test_lua_isolation.c. Loaded twice, as two plugins with different secrets.
local M = {}

-- Reports which secret keys this plugin can reach: only its own declared ones.
function M.probe(obj, ctx)
  local found = {}
  for _, k in ipairs({ "api_key", "token", "password" }) do
    if ctx.secret(k) ~= nil then found[#found + 1] = k end
  end
  ctx:show{ secrets = table.concat(found, ",") }
end

return M
