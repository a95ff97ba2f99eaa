-- pairs(string) to get hold of the real string table and rewrite string.format. Neither this
-- run nor any later run (the other items of a bulk action) may see a changed string.format.
local M = {}

local function evil() return "pwned" end

local function intact()
  return string.format("%d", 7) == "7" and ("%d"):format(7) == "7"
end

function M.lookup()
  if not intact() then return nil, "BREACH (earlier run): string.format was rewritten" end
  pcall(function()
    local _, state = pairs(string)
    if type(state) == "table" then state.format = evil end
  end)
  pcall(function()
    local _, state = pairs(string)
    if type(state) == "table" then rawset(state, "format", evil) end
  end)
  pcall(function()
    local iter, state, key = pairs(string)
    for _ = 1, 100 do
      local k, v = iter(state, key)
      if k == nil then break end
      if type(v) == "table" then v.format = evil end
      key = k
    end
  end)
  pcall(function()
    for _, v in pairs(getmetatable("") or {}) do
      if type(v) == "table" then v.format = evil end
    end
  end)
  if not intact() then return nil, "BREACH: string.format rewritten through pairs(string)" end
  return nil, "contained: string is read-only"
end

return M
