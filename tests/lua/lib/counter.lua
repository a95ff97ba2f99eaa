-- counter.lua: a module whose closure counts calls across the runs of a script (a module is
-- loaded once per script), for tests/lua/entries_index.lua.
local n = 0
return { next = function() n = n + 1; return n end }
