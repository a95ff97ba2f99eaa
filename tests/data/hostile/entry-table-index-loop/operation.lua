-- The script returns an entry table with no entries and an __index that loops forever. The
-- host must look entries up raw: the plugin is refused ("no entry lookup"), nothing hangs.
local function forever()
  while true do end
end

return setmetatable({}, { __index = forever, __len = forever, __pairs = forever })
