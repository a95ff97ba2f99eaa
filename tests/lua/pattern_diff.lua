-- pattern_diff.lua: compares the sandbox's budgeted pattern functions (B) with Lua's own (A)
-- on random subjects and patterns, for tests/unit/test_lua_pattern.c. Returns nil when every
-- case agrees, else a description of the first difference.
local A, B, cases = ...

local subjects = { "", "a", "ab", "aab", "abc abc", "(a(b)c)", "x=1, y=22", "  trim  ",
                   "a.b.c", "%a%", "aaa", "hello world from lua", "[x]", "\0a\0", "a-b-c" }
local tokens = { "a", "b", "c", ".", "%a", "%d", "%s", "%w", "%A", "%.", "%%", "[ab]",
                 "[^a]", "[a-c]", "[%d]", "[]]", "*", "+", "-", "?", "(", ")", "()", "%1",
                 "%2", "^", "$", "%b()", "%f[%w]", "%f[%s]", " ", "=", ",", "x", "%", "[",
                 "%b", "%f", "[^", "%z", "%0", "\0" }

local function pack(ok, ...)
  local t = { n = select("#", ...), ok = ok, ... }
  if not ok then t[1] = tostring(t[1]):gsub("^.-:%d+: ", "") end
  return t
end

local function same(x, y)
  if x.ok ~= y.ok or x.n ~= y.n then return false end
  for i = 1, x.n do
    if x[i] ~= y[i] then return false end
  end
  return true
end

local function show(t)
  local out = {}
  for i = 1, t.n do out[#out + 1] = string.format("%q", tostring(t[i])) end
  return (t.ok and "ok " or "error ") .. table.concat(out, ",")
end

local function gmatch_all(lib, s, p, init)
  local out = {}
  local n = 0
  for a, b in lib.gmatch(s, p, init) do
    n = n + 1
    out[#out + 1] = tostring(a) .. "|" .. tostring(b)
    if n > 100 then break end
  end
  return table.concat(out, ";")
end

local function gsub_fn(...) return "<" .. table.concat({ ... }, "|") .. ">" end
local repls = { "x", "%0%0", "[%1]", "%%", "%2", gsub_fn, { a = "A", ab = "AB" }, 7, "%" }

math.randomseed(20261206)
for i = 1, cases do
  local parts = {}
  for _ = 1, math.random(1, 6) do parts[#parts + 1] = tokens[math.random(#tokens)] end
  local p = table.concat(parts)
  local s = subjects[math.random(#subjects)]
  local init = ({ nil, 1, 2, -1, -3, 0, 100 })[math.random(7)]
  local r = repls[math.random(#repls)]
  local n = ({ nil, 1, 2 })[math.random(3)]
  local checks = {
    { "find", function(L) return L.find(s, p, init) end },
    { "find plain", function(L) return L.find(s, p, init, true) end },
    { "match", function(L) return L.match(s, p, init) end },
    { "gmatch", function(L) return gmatch_all(L, s, p, init) end },
    { "gsub", function(L) return L.gsub(s, p, r, n) end },
  }
  for _, c in ipairs(checks) do
    local x, y = pack(pcall(c[2], A)), pack(pcall(c[2], B))
    if not same(x, y) then
      return string.format("case %d %s(%q, %q, init %s): lua %s, sandbox %s", i, c[1], s, p,
                           tostring(init), show(x), show(y))
    end
  end
end
return nil
