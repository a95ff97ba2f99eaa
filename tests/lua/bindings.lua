-- bindings.lua: the ioc, stix and tq modules, for tests/unit/test_lua_bindings.c.
local M = {}

function M.ioc(obj, ctx)
  assert(ioc.type("45.83.122.166") == "IP Address", "ipv4 type")
  local t, err = ioc.type("not an indicator at all")
  assert(t == nil and type(err) == "string", "unknown type gives nil, err")
  assert(ioc.refang("hxxp://evil[.]example/x") == "http://evil.example/x", "refang")
  local v, ty = ioc.normalize("EVIL.Example")
  assert(v == "evil.example" and ty == "FQDN", "normalize: " .. tostring(v))
  assert(ioc.normalize("0X1.2.3.4", "IP Address") == nil, "strict type")
  assert(ioc.domain("https://Sub.Example.co.uk/path") == "sub.example.co.uk", "domain")
  assert(ioc.registered_domain("a.b.example.co.uk") == "example.co.uk", "registered domain")
end

function M.stix(obj, ctx)
  local a, b = stix.id("indicator"), stix.id("indicator")
  assert(a:match("^indicator%-%-%x+%-%x+%-4%x+%-%x+%-%x+$") and a ~= b, "v4 ids: " .. a)
  assert(stix.id("report", "r1") == stix.id("report", "r1"), "v5 ids are stable")
  assert(stix.id("report", "r1") ~= stix.id("report", "r2"), "v5 ids differ by name")
  local bad, err = stix.id("Not A Type")
  assert(bad == nil and err, "bad type")
  assert(stix.sco_id("ipv4-addr", "1.2.3.4"):match("^ipv4%-addr%-%-"), "sco id")
end

function M.tq_read(obj, ctx)
  local o = tq.get("IP Address", "45.83.122.166")
  assert(o and o.value == "45.83.122.166" and o.indicator_type == "IP Address", "tq.get")
  assert(o.sources[1] == "lua-test", "sources")
  assert(tq.get("IP Address", "10.9.9.9") == nil, "absent gives nil")
  local found = tq.search{indicator_type = "IP Address", limit = 5}
  assert(#found == 1 and found[1].value == "45.83.122.166", "search: " .. #found)
  local ok, err = pcall(tq.search, {colour = "red"})
  assert(not ok and err:find("unknown option 'colour'"), "unknown option")
  assert(#tq.statuses() == 5 and tq.statuses()[1] == "Active", "statuses")
  assert(#tq.indicator_types() >= 30, "indicator types")
end

function M.tq_without_library(obj, ctx)
  return tq.get("IP Address", "1.2.3.4")
end

return M
