-- rst/changes.lua: a change set built in plain Lua before it is handed to ctx. The mappers
-- (rst.ioc, rst.noise, rst.whois) fill one from an API answer without touching ctx, which
-- keeps them pure and testable and lets an operation and a bulk action share them; apply()
-- then records it with ctx's methods. Empty values and exact duplicates are dropped here so
-- that no mapper has to check for them.
local M = {}
M.__index = M

-- Attributes are kept as two parallel lists (names, values): a hit of the IoC lookup has a
-- few dozen of them and a bulk run maps thousands of hits a second, so no table is made per
-- attribute; attribute_list() gives them as {name, value} records.
function M.new()
  return setmetatable({ names = {}, values = {}, n_attrs = 0, links = {}, indicators = {},
                        score = nil, status = nil, seen = {}, seen_attrs = {} }, M)
end

-- Whether key was already added (and marks it).
function M:dup(key)
  if self.seen[key] then
    return true
  end
  self.seen[key] = true
  return false
end

-- Whether name = value was already added (and marks it). seen_attrs maps a name to its first
-- value, or to the set of its values once it has several: most names have one value.
local function dup_attr(self, name, value)
  local seen = self.seen_attrs
  local prev = seen[name]
  if prev == nil then
    seen[name] = value
    return false
  end
  if prev == value then
    return true
  end
  if type(prev) == "table" then
    if prev[value] then
      return true
    end
    prev[value] = true
    return false
  end
  seen[name] = { [prev] = true, [value] = true }
  return false
end

-- An attribute name = value; nil or "" values are skipped.
function M:attribute(name, value)
  if value == nil or value == "" then
    return
  end
  if type(value) ~= "string" then
    value = tostring(value)
  end
  if dup_attr(self, name, value) then
    return
  end
  local n = self.n_attrs + 1
  self.n_attrs = n
  self.names[n], self.values[n] = name, value
end

-- The attributes as a list of {name = ..., value = ...}, in the order they were added.
function M:attribute_list()
  local out = {}
  for i = 1, self.n_attrs do
    out[i] = { name = self.names[i], value = self.values[i] }
  end
  return out
end

-- The same attribute name for each value of a list.
function M:attributes_of(name, values)
  for i = 1, #values do
    self:attribute(name, values[i])
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
  return self.n_attrs == 0 and #self.links == 0 and #self.indicators == 0 and
           self.score == nil and self.status == nil
end

-- Records everything with ctx.
function M:apply(ctx)
  if self.n_attrs > 0 then
    ctx:attributes(self.names, self.values)
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
  return { attributes = self.n_attrs, links = #self.links, indicators = #self.indicators,
           score = self.score, status = self.status }
end

return M
