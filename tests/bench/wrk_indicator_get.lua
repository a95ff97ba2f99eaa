-- wrk_indicator_get.lua: GET /api/indicators/{id}?with=attributes,sources for a random id in
-- [1, N] with "Authorization: Bearer TOKEN" (server_bench.sh). Arguments after "--":
-- TOKEN N. Counts answers other than 2xx per thread and prints them in done().
local token, n = "", 1
local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  token = args[1] or ""
  n = tonumber(args[2] or "1")
  non2xx = 0
  math.randomseed(os.time() + (tonumber(tostring({}):match("0x(%x+)"), 16) or 0) % 100000)
end

function request()
  local id = math.random(1, n)
  return wrk.format("GET", "/api/indicators/" .. id .. "?with=attributes,sources",
                    { ["Authorization"] = "Bearer " .. token })
end

function response(status, headers, body)
  if status < 200 or status > 299 then
    non2xx = non2xx + 1
  end
end

function done(summary, latency, requests)
  local total = 0
  for _, t in ipairs(threads) do
    total = total + (t:get("non2xx") or 0)
  end
  io.write(string.format("non2xx %d\n", total))
end
