-- prepare.sh replaces this file with a symlink to a script outside the plugin folder; the
-- plugin must then be refused. This text runs only if the test did not make the symlink.
local M = {}

function M.lookup()
  return nil, "BREACH: the test did not replace operation.lua with a symlink"
end

return M
