-- wrk script for sim_bench.sh: every request asks /v1/ioc about a different IPv4 address, so
-- the simulator generates a fresh answer each time (no two requests share a value).
local n = 0
local salt = math.random(0, 255)

request = function()
  n = n + 1
  local v = string.format("%d.%d.%d.%d", 11 + (n >> 16) % 200, (n >> 8) % 256, n % 256, salt)
  return wrk.format("GET", "/v1/ioc?value=" .. v)
end
