-- A plain error inside xpcall, whose message handler never returns. The instruction budget
-- must kill the run even there (Lua calls the handler again on an error inside it).
local M = {}

function M.lookup()
  xpcall(function() error("plain error") end, function()
    while true do end
  end)
  return nil, "BREACH: the run went on after an endless message handler"
end

return M
