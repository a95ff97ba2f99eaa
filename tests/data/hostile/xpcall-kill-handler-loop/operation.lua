-- An endless loop inside xpcall: the budget's kill is an error that calls the message handler,
-- which loops forever too. The run must still be killed.
local M = {}

function M.lookup()
  xpcall(function()
    while true do end
  end, function()
    while true do end
  end)
  return nil, "BREACH: the run went on after the budget's kill"
end

return M
