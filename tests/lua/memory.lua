-- memory.lua: entries that make C spend memory on their behalf (JSON texts and trees, change
-- sets, request bodies) far past a 16 MiB budget, for tests/unit/test_lua_memory.c; and
-- entries that hand the host numbers past any sense (1e300, -1, NaN, math.huge).
local M = {}

-- 400 references to one 1 MiB string: 1 MiB of Lua memory, 400 MiB once copied by C.
local function wide()
  local s = string.rep("x", 1 << 20)
  local t = {}
  for i = 1, 400 do t[i] = s end
  return t
end

function M.ok(obj, ctx)
  ctx:tag("fine")
end

function M.encode_wide()
  return json.encode(wide())
end

function M.show_wide(obj, ctx)
  ctx:show({ rows = wide() })
end

function M.return_wide()
  return { rows = wide() }
end

function M.changeset_wide(obj, ctx)
  local v = string.rep("v", 60000)
  for i = 1, 20 do
    local attrs = {}
    for j = 1, 250 do attrs["a" .. j] = v end
    ctx:indicator("IP Address", "10.0.0." .. i, attrs)
  end
end

function M.attributes_wide(obj, ctx)
  local v = string.rep("v", 60000)
  for i = 1, 1000 do ctx:attribute("n" .. i, v) end
  for i = 1, 1000 do ctx:tag(v .. i) end
end

function M.http_json_wide()
  return http.post("http://127.0.0.1:9/", { json = wide() })
end

-- The text fits in what C allocates for it but not in the budget once pushed (the old
-- encoder's text leaked there) ...
function M.encode_push_fails()
  local filler = string.rep("f", 11 << 20)
  local s = string.rep("x", 3 << 20)
  return json.encode({ s }), filler
end

-- ... and the buffer fits but the push of its copy does not.
function M.encode_push_fails_late()
  local filler = string.rep("f", 8 << 20)
  local s = string.rep("x", 3 << 20)
  return json.encode({ s }), filler
end

-- A caught failure of a small show leaves the budget as it was: shows replaced a thousand
-- times over cost one show.
function M.show_replaced(obj, ctx)
  local row = string.rep("r", 100000)
  for i = 1, 1000 do ctx:show({ row, i }) end
  for i = 1, 1000 do pcall(ctx.show, ctx, { row, print }) end
end

function M.encode_exact(obj, ctx)
  ctx:show({
    text = json.encode({ a = "q\"\\\n\t\1z", n = 3, f = 0.5, big = 1 << 60, neg = -2.0, nul = "a\0b",
      list = { 1, 2, json.null }, empty = {} }),
  })
end

local odd = { 1e300, -1, 0 / 0, math.huge }

function M.http_timeouts(obj, ctx)
  local out = {}
  for i, t in ipairs(odd) do
    local ok, err = pcall(http.get, "http://127.0.0.1:9/", { timeout = t })
    out[i] = tostring(err)
  end
  ctx:show(out)
end

function M.sleeps(obj, ctx)
  local out = {}
  for i, t in ipairs(odd) do
    local ok, err = pcall(http.sleep, t)
    out[i] = ok and "slept" or tostring(err)
  end
  ctx:show(out)
end

function M.scores(obj, ctx)
  local out = {}
  for i, t in ipairs(odd) do
    local ok, err = pcall(ctx.score, ctx, t)
    out[i] = ok and "scored" or tostring(err)
  end
  ctx:show(out)
end

return M
