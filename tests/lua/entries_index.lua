-- entries_index.lua: a script whose entries table has its entry only on the first execution
-- of the chunk (the load's probe) and an __index that loops, for test_lua_sandbox.c: the
-- host must read the entry raw, not through the loop.
local counter = require("counter")
local entries = {}
if counter.next() == 1 then
  entries.go = function() end
end
return setmetatable(entries, { __index = function() while true do end end })
