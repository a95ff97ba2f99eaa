-- sandbox.lua: entries that try to leave the sandbox or exhaust a budget, next to entries
-- that behave, for tests/unit/test_lua_sandbox.c. Each hostile entry must end alone.
local M = {}

function M.ok(obj, ctx)
  ctx:tag("fine")
end

function M.os_execute()
  return os.execute("touch /tmp/tqhost-sandbox-escaped")
end

function M.io_open()
  local f = io.open("/etc/passwd")
  return f:read("a")
end

function M.require_parent()
  return require("../x")
end

function M.require_abs()
  return require("/etc/passwd")
end

function M.load_binary()
  local f, err = load("\27Lua\84\0\25\147\13\10\26\10\4\8\8")
  if f then error("a binary chunk was loaded") end
  return nil, err
end

function M.load_text_env()
  -- a text chunk loads, and its globals are the run's own
  local f = assert(load("answer = 6 * 7; return answer"))
  if f() ~= 42 or answer ~= 42 then error("load: wrong environment") end
end

function M.debug_access()
  return debug.getinfo(1)
end

function M.string_dump()
  local via_method = ("x").dump
  local via_table = string.dump
  if via_method or via_table then error("string.dump is reachable") end
  if getmetatable("") ~= false then error("the strings' metatable is visible") end
end

function M.memory_bomb()
  local s = string.rep("x", 1e9)
  return #s
end

function M.memory_bomb_pcall()
  local t = {}
  for i = 1, 1000 do
    local ok = pcall(function() t[#t + 1] = string.rep("y", 4e6) end)
  end
  return nil, "the memory bomb was survived"
end

function M.endless_pcall()
  while true do
    pcall(function() while true do end end)
  end
end

function M.endless_loop()
  local n = 0
  while true do n = n + 1 end
end

function M.deep_recursion()
  local function f(n) return 1 + f(n + 1) end
  return f(1)
end

function M.metamethod_recursion()
  local t = setmetatable({}, {__index = function(t, k) return t[k] end})
  return t.x
end

function M.write_string()
  string.x = 1
end

function M.rawset_string()
  rawset(string, "upper", function() return "pwned" end)
end

function M.write_base_via_metatable()
  local mt = getmetatable(_ENV)
  if mt then mt.__index.print = nil end
  setmetatable(_ENV, {__index = function() return "pwned" end})
end

function M.gc_metamethod()
  setmetatable({}, {__gc = function() while true do end end})
end

function M.set_global()
  shared_value = "from run A"
  _G.other = "also A"
end

function M.read_global()
  if shared_value ~= nil or other ~= nil then
    error("a global of another run is visible: " .. tostring(shared_value))
  end
  if string.upper("a") ~= "A" then error("string.upper was replaced") end
end

function M.error_traceback()
  local function inner_helper() error("boom in helper") end
  inner_helper()
end

function M.fail()
  return nil, "not found here"
end

function M.require_lib()
  local m = require("rst.util")
  if m.double(21) ~= 42 then error("rst.util.double is wrong") end
  if require("rst.util") ~= m then error("require does not cache") end
  if require("json") ~= json then error("require json is not the json module") end
end

function M.collectgarbage_full()
  collectgarbage("collect")
end

function M.show_return()
  return {summary = "shown", n = 3}
end

function M.module_id(obj, ctx)
  ctx:tag(require("rst.util").id())
end

function M.module_sets_global()
  require("rst.util").set_global()
end

function M.module_table_write()
  require("rst.util").double = nil
end

function M.module_global_private()
  local util = require("rst.util")
  if helper_global ~= nil then error("a module's global leaked into the run") end
  if util.helper() ~= "module global" then error("the module lost its own global") end
end

function M.sleep_short(obj, ctx)
  http.sleep(150)
  ctx:tag("slept")
end

-- Many short waits: the runtime resumes the run every 2 ms (its watchdog never parks).
function M.sleep_steps(obj, ctx)
  for _ = 1, 75 do
    http.sleep(2)
  end
  ctx:tag("slept")
end

function M.sleep_long()
  http.sleep(60000)
end

function M.sleep_bad()
  http.sleep(-1)
end

-- An endless message handler: the kill of the body must not run it (its hooks would be off).
function M.xpcall_loop_handler()
  xpcall(function() while true do end end, function() while true do end end)
end

-- An endless message handler after a plain error: the kill inside the handler is final.
function M.xpcall_error_loop_handler()
  xpcall(function() error("first") end, function() while true do end end)
end

-- A run that yields after every short slice: the instruction budget still holds.
function M.sliced_loop()
  while true do
    for _ = 1, 2000 do end
    http.sleep(0)
  end
end

-- Patterns that backtrack for ages inside one C call, each behind a pcall.
local subject = string.rep("a", 40)
local bomb = string.rep("a*", 20) .. "b"

function M.pattern_find()
  pcall(string.find, subject, bomb)
  return nil, "string.find came back"
end

function M.pattern_match()
  pcall(string.match, subject, bomb)
  return nil, "string.match came back"
end

function M.pattern_gmatch()
  pcall(function() for _ in subject:gmatch(bomb) do end end)
  return nil, "string.gmatch came back"
end

function M.pattern_gsub()
  pcall(string.gsub, subject, bomb, "x")
  return nil, "string.gsub came back"
end

-- A returned table whose reads loop: the host must not run its metamethods.
function M.return_looping_index()
  return setmetatable({}, {__index = function() while true do end end})
end

-- Endless __close handlers around an endless loop: the kill runs none of them to its end.
function M.close_loop_handler()
  local outer <close> = setmetatable({}, {__close = function() while true do end end})
  pcall(function()
    local inner <close> = setmetatable({}, {__close = function() while true do end end})
    while true do end
  end)
end

-- A __gc added to a metatable after setmetatable: Lua never marks the object, nothing runs
-- at a collection or at the runtime's close.
function M.gc_added_later(obj, ctx)
  local mt = {}
  local t = setmetatable({}, mt)
  mt.__gc = function() while true do end end
  ctx:tag(type(t))
end

return M
