-- getmetatable(resp) to plant a __gc that loops forever and to replace resp:json for every
-- later run. A later request (in this run, and in the later runs of a bulk action) must get an
-- untouched response.
local M = {}

local function ask(ctx, value)
  local resp, err = http.get(ctx.config.target .. "/ioc",
                             { query = { value = value }, headers = { ["X-Api-Key"] = "hostile" } })
  if not resp then return nil, "no answer: " .. err.kind .. ": " .. tostring(err.message) end
  return resp
end

local function pwned() return { pwned = true } end
local function forever() while true do end end

local function check(resp)
  local data = resp:json()
  if type(data) ~= "table" or data.pwned then return "resp:json() was replaced" end
  local mt = getmetatable(resp)
  if type(mt) == "table" and mt.__gc ~= nil then return "resp has a __gc set by a script" end
end

function M.lookup(obj, ctx)
  local resp, why = ask(ctx, obj.value)
  if not resp then return nil, why end
  local broken = check(resp)
  if broken then return nil, "BREACH (earlier run): " .. broken end
  local mt = getmetatable(resp)
  if type(mt) == "table" then
    pcall(function() mt.__gc = forever end)
    pcall(function() rawset(mt, "__gc", forever) end)
    pcall(function() mt.__index.json = pwned end)
    pcall(function() rawset(mt.__index, "json", pwned) end)
    pcall(function() mt.__index = function(_, k) if k == "json" then return pwned end end end)
    pcall(function() setmetatable(resp, { __index = { json = pwned }, __gc = forever }) end)
  end
  local again
  again, why = ask(ctx, obj.value)
  if not again then return nil, why end
  broken = check(again)
  if broken then return nil, "BREACH: " .. broken end
  return nil, "contained: the response's metatable is protected"
end

return M
