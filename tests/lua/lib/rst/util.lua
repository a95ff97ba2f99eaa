-- rst/util.lua: a tiny module under the test lib dir, loaded with require "rst.util". The
-- runtime loads it once per script: its top level runs once and every run shares it.
local M = {}
local identity = {} -- made once per load: tells whether two runs share one module
function M.double(n) return n * 2 end
function M.id() return tostring(identity) end
helper_global = "module global"  -- the module's own global, set while it loads
function M.helper() return helper_global end
function M.set_global() leaked = 1 end -- refused: a module's globals are frozen after loading
return M
