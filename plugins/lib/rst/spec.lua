-- rst/spec.lua: assertions shared by the RST plugins' busted specs (plugins/rst-*/spec), which
-- `tqhost plugin test` runs against the change set r.changes of a tqhost.test run. Test-only:
-- no operation or action script requires it.
local assert = require "luassert"

local M = {}

-- Every value of attribute name, in order.
function M.values(r, name)
  local out = {}
  for _, a in ipairs(r.changes.attributes) do
    if a.name == name then
      out[#out + 1] = a.value
    end
  end
  return out
end

-- The one value of attribute name (fails when there are none or several).
function M.one(r, name)
  local v = M.values(r, name)
  assert.are.equal(1, #v, "attribute " .. name .. " appears " .. #v .. " times")
  return v[1]
end

-- Whether any string (key or value) anywhere in v contains needle.
function M.contains(v, needle)
  if type(v) == "string" then
    return v:find(needle, 1, true) ~= nil
  end
  if type(v) == "table" then
    for k, x in pairs(v) do
      if M.contains(k, needle) or M.contains(x, needle) then
        return true
      end
    end
  end
  return false
end

-- The run recorded nothing to write.
function M.assert_no_changes(r)
  assert.are.equal(0, #r.changes.attributes)
  assert.are.equal(0, #r.changes.links)
  assert.are.equal(0, #r.changes.indicators)
  assert.is_nil(r.changes.score)
  assert.is_nil(r.changes.status)
end

return M
