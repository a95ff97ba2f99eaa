-- An endless loop that yields (http.sleep(0)) after a few hundred instructions, so that no
-- single execution lasts the millisecond after which the budget's hook is set. The instruction
-- budget (1,000,000) must still count across yields and kill it, well before the 6 s timeout.
local M = {}

function M.lookup()
  local x = 0
  while true do
    for i = 1, 100 do x = x + i end
    http.sleep(0)
  end
end

return M
