-- rst/parse.lua: tolerant readers for RST Cloud API values and for plugin config values.
-- The RST APIs send scalars as JSON numbers in older answers and as strings in newer ones
-- ("total": "28", "fseen": "1620691200"), flags as the strings "true"/"false"/"possible",
-- and placeholders ("unknown", "", "1970-01-01 00:00:00", -1) for absent data. Config values
-- reach a script as strings (the host stores them as text) or as Lua values in tests.
-- Pure functions: no host module is used here except os.date.
local memo = require "rst.memo"

local M = {}

local byte, gsub = string.byte, string.gsub

-- s without leading and trailing whitespace (%s). Most values have none: they are returned
-- as they are, without running a pattern (bytes above ' ' are never whitespace).
local function trim(s)
  local first, last = byte(s, 1), byte(s, -1)
  if first == nil or (first > 32 and last > 32) then
    return s
  end
  return (gsub(gsub(s, "^%s+", ""), "%s+$", ""))
end

-- A finite number from a number or a numeric string, else nil.
function M.num(v)
  local n
  if type(v) == "number" then
    n = v
  elseif type(v) == "string" then
    n = tonumber(v) -- tonumber itself skips leading and trailing whitespace
  end
  if n == nil or n ~= n or n == math.huge or n == -math.huge then
    return nil
  end
  return n
end

-- An integer (truncated toward zero, like int(float(x)) in the Python clients), else nil.
function M.int(v)
  local n = M.num(v)
  if n == nil then
    return nil
  end
  n = n >= 0 and math.floor(n) or math.ceil(n)
  return math.tointeger(n)
end

-- A number as short text: integers without ".0", others with at most two decimals.
function M.fmt_num(n)
  if math.type(n) == "integer" then
    return string.format("%d", n)
  end
  if n == math.floor(n) then
    return math.abs(n) < 2 ^ 53 and string.format("%d", math.tointeger(n))
             or string.format("%.17g", n)
  end
  -- "%.2f" gives two decimals: drop trailing zeros, then a trailing point ("2.50" -> "2.5")
  local s = string.format("%.2f", n)
  if byte(s, -1) == 48 then
    s = byte(s, -2) == 48 and s:sub(1, -3) or s:sub(1, -2)
    if byte(s, -1) == 46 then
      s = s:sub(1, -2)
    end
  end
  return s
end

-- Trimmed non-empty text of a string or number, else nil. Placeholders listed in extra
-- (a set of lower-case strings) count as absent.
function M.text(v, extra)
  if type(v) == "number" then
    return M.fmt_num(v)
  end
  if type(v) ~= "string" then
    return nil
  end
  local s = trim(v)
  if s == "" or (extra and extra[s:lower()]) then
    return nil
  end
  return s
end

-- Placeholders the RST APIs use for "no data".
M.UNKNOWN = { ["unknown"] = true, ["n/a"] = true, ["none"] = true, ["null"] = true }

-- The list of non-empty texts of an array (strings or numbers); anything else gives {}.
function M.list(v, extra)
  local out = {}
  if type(v) ~= "table" then
    return out
  end
  for _, item in ipairs(v) do
    local s = M.text(item, extra)
    if s then
      out[#out + 1] = s
    end
  end
  return out
end

-- A comma-separated string (or already a list) as a list of trimmed non-empty items.
function M.csv(v)
  if type(v) == "table" then
    return M.list(v)
  end
  local out = {}
  if type(v) ~= "string" then
    return out
  end
  for item in v:gmatch("[^,]+") do
    local s = M.text(item)
    if s then
      out[#out + 1] = s
    end
  end
  return out
end

-- An RST flag ("true"/"false"/"possible", or a JSON boolean) as lower-case text, else nil.
function M.flag(v)
  if type(v) == "boolean" then
    return v and "true" or "false"
  end
  local s = M.text(v)
  return s and s:lower() or nil
end

-- Epoch seconds (number or string) as "YYYY-MM-DD HH:MM:SS" UTC; nil for 0, negative or
-- unparsable values, which RST uses for "unknown".
local dates = memo.new() -- answers repeat the same days

function M.datetime(v)
  local s = dates.v[v]
  if s ~= nil then
    return s or nil
  end
  local n = M.int(v)
  s = n ~= nil and n > 0 and os.date("!%Y-%m-%d %H:%M:%S", n)
  local t = type(v)
  if t == "string" or (t == "number" and v == v) then -- NaN cannot be a key
    memo.put(dates, v, s)
  end
  return s or nil
end

-- A "YYYY-MM-DD HH:MM:SS" date as given by RST, nil for the 1970 placeholder or junk.
function M.date_text(v)
  local s = M.text(v, M.UNKNOWN)
  if s == nil or not s:match("^%d%d%d%d%-%d%d%-%d%d") or s:match("^1970%-01%-01") then
    return nil
  end
  return s
end

-- Epoch seconds of a "YYYY-MM-DD[ HH:MM:SS]" UTC date, else nil.
function M.epoch(s)
  local pattern = "^(%d+)%-(%d+)%-(%d+)[ T]?(%d*):?(%d*):?(%d*)"
  local y, mo, d, h, mi, se = tostring(s or ""):match(pattern)
  if y == nil then
    return nil
  end
  -- Days from civil (Howard Hinnant's algorithm): exact in UTC, no time zone involved.
  y, mo, d = tonumber(y), tonumber(mo), tonumber(d)
  y = mo <= 2 and y - 1 or y
  local era = (y >= 0 and y or y - 399) // 400
  local yoe = y - era * 400
  local doy = (153 * (mo > 2 and mo - 3 or mo + 9) + 2) // 5 + d - 1
  local doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
  local days = era * 146097 + doe - 719468
  return days * 86400 + (tonumber(h) or 0) * 3600 + (tonumber(mi) or 0) * 60 + (tonumber(se) or 0)
end

-- A config boolean: true/false, "true"/"false", "yes"/"no", "1"/"0", "on"/"off"; default
-- when absent or empty. Anything else is nil, "reason" so that a typo is not silently false.
function M.config_bool(config, key, default)
  local v = config[key]
  if v == nil or v == "" then
    return default
  end
  if type(v) == "boolean" then
    return v
  end
  local s = tostring(v):lower()
  if s == "true" or s == "yes" or s == "1" or s == "on" then
    return true
  end
  if s == "false" or s == "no" or s == "0" or s == "off" then
    return false
  end
  return nil, string.format("config %s: '%s' is not a boolean (true or false)", key, tostring(v))
end

-- A config integer within [min, max]; default when absent or empty; nil, "reason" otherwise.
function M.config_int(config, key, default, min, max)
  local v = config[key]
  if v == nil or v == "" then
    return default
  end
  local n = M.num(v)
  if n == nil or n ~= math.floor(n) or n < min or n > max then
    return nil, string.format("config %s: '%s' is not an integer from %d to %d", key, tostring(v),
                              min, max)
  end
  return math.tointeger(n)
end

-- A config choice among the listed values (case-insensitive); default when absent.
function M.config_choice(config, key, default, choices)
  local v = config[key]
  if v == nil or v == "" then
    return default
  end
  local s = tostring(v):lower()
  for _, c in ipairs(choices) do
    if s == c then
      return c
    end
  end
  return nil, string.format("config %s: '%s' is not one of %s", key, tostring(v),
                            table.concat(choices, ", "))
end

return M
