-- http.lua: entries that call the local test server of tests/unit/test_lua_http.c. obj.value
-- is the server's base URL ("http://127.0.0.1:PORT"), obj.description a number to echo.
local M = {}

function M.fetch(obj, ctx)
  local resp, err = http.get(obj.value .. "/slow", {query = {n = obj.description}})
  if not resp then return nil, err.kind .. ": " .. err.message end
  local data = assert(resp:json())
  ctx:attribute("n", data.n)
  ctx:attribute("content-type", resp.headers["content-type"])
end

-- A quick answer, then a few milliseconds of work on it (a bulk run mapping an answer).
function M.fetch_then_spin(obj, ctx)
  local resp, err = http.get(obj.value .. "/fast", {query = {n = obj.description}})
  if not resp then return nil, err.kind .. ": " .. err.message end
  local x = 0
  for i = 1, 3000000 do x = x + i end
  ctx:attribute("n", resp:json().n)
end

function M.off_list(obj, ctx)
  local url = obj.value:gsub("127%.0%.0%.1", "localhost")
  local resp, err = http.get(url .. "/slow")
  if resp then error("a host off the allow-list was reached") end
  return nil, err.kind .. ": " .. err.message
end

function M.redirect_off_list(obj, ctx)
  local resp, err = http.get(obj.value .. "/redirect")
  if resp then error("a redirect off the allow-list was followed") end
  return nil, err.kind .. ": " .. err.message
end

function M.secret_header(obj, ctx)
  local resp, err = http.get(obj.value .. "/echo-auth",
                             {headers = {Authorization = ctx.secret("api_key")}})
  if not resp then return nil, err.message end
  -- the server echoes the header: whatever the script does with it, the text stays masked
  log.warn("server said %s", resp.body)
  ctx:attribute("echo", resp.body)
end

function M.post_json(obj, ctx)
  local resp = assert(http.post(obj.value .. "/echo-body", {json = {value = "x", n = 2}}))
  local back = resp:json()
  if back.value ~= "x" or back.n ~= 2 then error("json body not sent") end
end

function M.stall(obj, ctx)
  http.get(obj.value .. "/stall")
  error("the stalled request returned")
end

return M
