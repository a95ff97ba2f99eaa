-- About 320 MiB of change set (attributes, tags, links, related indicators) built from one
-- 64 KiB string: the change set's C memory must count against the 8 MiB budget.
local M = {}

function M.lookup(_, ctx)
  local s = string.rep("v", 64 * 1024 - 16)
  for i = 1, 1000 do ctx:attribute("Hostile " .. i, s .. i) end
  for i = 1, 1000 do ctx:tag(s .. i) end
  for i = 1, 1000 do ctx:link("malware", "m" .. i, { link_type = "x", description = s .. i }) end
  local values = {}
  for i = 1, 10 do values[i] = s .. i end
  for i = 1, 100 do ctx:indicator("FQDN", "h" .. i .. ".example.org", { ["Hostile"] = values }) end
  return nil, "BREACH: recorded about 320 MiB of changes under an 8 MiB budget"
end

return M
