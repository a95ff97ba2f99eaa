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

-- The shared read-only tables a run could try to reach through pairs' second value.
local function shared(ctx)
  return {string = string, json = json, http = http, table = table, math = math,
          config = ctx.config}
end

-- Tries to write every shared table through what pairs hands out; each write must fail.
function M.pairs_backdoor(obj, ctx)
  local written = {}
  for name, t in pairs(shared(ctx)) do
    local _, real = pairs(t)
    if pcall(function() real.poison = name end) then written[#written + 1] = name end
    pcall(function() real.format = function() return "poisoned" end end)
  end
  ctx:show{ written = table.concat(written, ",") }
end

-- A later run: nothing of what pairs_backdoor tried is visible.
function M.pairs_check(obj, ctx)
  local seen = {}
  for name, t in pairs(shared(ctx)) do
    if t.poison ~= nil then seen[#seen + 1] = name end
  end
  if string.format("%d", 7) ~= "7" then seen[#seen + 1] = "string.format" end
  ctx:show{ seen = table.concat(seen, ",") }
end

local url = "https://api.example.test/v1/ioc?type=ip&value=45.83.122.166"

-- Tries to reach the responses' metatable and to poison resp:json and add a finaliser.
function M.resp_poison(obj, ctx)
  local resp = assert(http.get(url))
  local mt = getmetatable(resp)
  local reached = type(mt) == "table"
  pcall(function() mt.__index.json = function() return "poisoned" end end)
  pcall(function() mt.__gc = function() while true do end end end)
  ctx:show{ reached = reached }
end

-- A later run: resp:json() still decodes.
function M.resp_check(obj, ctx)
  local resp = assert(http.get(url))
  local data = resp:json()
  ctx:show{ score = type(data) == "table" and data.score or tostring(data) }
end

return M
