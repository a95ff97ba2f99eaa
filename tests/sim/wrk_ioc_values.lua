-- wrk_ioc_values.lua: wrk script of tests/bench/sim_bench.sh. Every request asks /v1/ioc
-- about a different IPv4 address, so rstsim generates a fresh answer each time.
local n = 0
local salt = math.random(0, 255)

request = function()
  n = n + 1
  -- wrk runs LuaJIT (Lua 5.1): no bit operators, so floor division it is
  local v = string.format("%d.%d.%d.%d", 11 + math.floor(n / 65536) % 200,
                          math.floor(n / 256) % 256, n % 256, salt)
  return wrk.format("GET", "/v1/ioc?value=" .. v)
end
