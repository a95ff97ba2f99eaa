-- rst/util.lua: a tiny module under the test lib dir, loaded with require "rst.util".
local M = {}
function M.double(n) return n * 2 end
helper_global = "module global"  -- goes to the requiring run's own _ENV
return M
