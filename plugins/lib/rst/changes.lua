-- rst/changes.lua: a change set built in plain Lua before it is handed to ctx. The mappers
-- (rst.ioc, rst.noise, rst.whois) fill one from an API answer without touching ctx, which
-- keeps them pure and testable and lets an operation and a bulk action share them; apply()
-- then records it with ctx's methods. Empty values and exact duplicates are dropped here so
-- that no mapper has to check for them.
local M = {}
M.__index = M

function M.new()
  return setmetatable({ attributes = {}, links = {}, indicators = {}, score = nil,
                        status = nil, seen = {} }, M)
end

-- Whether key was already added (and marks it).
function M:dup(key)
  if self.seen[key] then
    return true
  end
  self.seen[key] = true
  return false
end

-- An attribute name = value; nil or "" values are skipped.
function M:attribute(name, value)
  if value == nil or value == "" then
    return
  end
  value = tostring(value)
  if self:dup("a\0" .. name .. "\0" .. value) then
    return
  end
  self.attributes[#self.attributes + 1] = { name = name, value = value }
end

-- The same attribute name for each value of a list.
function M:attributes_of(name, values)
  for _, v in ipairs(values) do
    self:attribute(name, v)
  end
end

-- A link to an object of object_type named value.
function M:link(object_type, value, link_type, description)
  if value == nil or value == "" then
    return
  end
  if self:dup("l\0" .. object_type .. "\0" .. value:lower()) then
    return
  end
  self.links[#self.links + 1] = { object_type = object_type, value = value,
                                  link_type = link_type, description = description }
end

-- A related indicator of ThreatQ type itype; attrs is {name = value} (value may be a list).
function M:indicator(itype, value, attrs)
  if value == nil or value == "" then
    return
  end
  if self:dup("i\0" .. itype .. "\0" .. value:lower()) then
    return
  end
  self.indicators[#self.indicators + 1] = { type = itype, value = value, attributes = attrs or {} }
end

-- Whether anything would be written.
function M:empty()
  return #self.attributes == 0 and #self.links == 0 and #self.indicators == 0 and
           self.score == nil and self.status == nil
end

-- Records everything with ctx.
function M:apply(ctx)
  for _, a in ipairs(self.attributes) do
    ctx:attribute(a.name, a.value)
  end
  for _, l in ipairs(self.links) do
    ctx:link(l.object_type, l.value, { link_type = l.link_type, description = l.description })
  end
  for _, i in ipairs(self.indicators) do
    ctx:indicator(i.type, i.value, i.attributes)
  end
  if self.score ~= nil then
    ctx:score(self.score)
  end
  if self.status ~= nil then
    ctx:status(self.status)
  end
end

-- Counts for the analyst's summary.
function M:summary()
  return { attributes = #self.attributes, links = #self.links, indicators = #self.indicators,
           score = self.score, status = self.status }
end

return M
