-- operation.lua of example-lookup: one request, then the change set and what to show.
local util = require "example.util"

local function query(obj, ctx, path)
  local resp, err = http.get(ctx.config.base_url .. path, {
    query = { value = obj.value },
    headers = { ["X-Api-Key"] = ctx.secret("api_key") },
  })
  if not resp then
    if err.status == 404 then return nil, "not found" end
    return nil, err.kind .. ": " .. err.message
  end
  local ok, data = pcall(resp.json, resp)
  if not ok then return nil, "bad answer: not JSON" end
  return data
end

local function record(obj, ctx, data)
  ctx:attribute("Example Score", data.score)
  for _, t in ipairs(data.tags or {}) do ctx:tag(t) end
  for _, m in ipairs(data.malware or {}) do
    ctx:link("malware", m, { link_type = "indicates", description = "seen with " .. obj.value })
  end
  for _, d in ipairs(data.related or {}) do
    ctx:indicator("FQDN", d, { ["Example Relation"] = "resolves" })
  end
  if ctx.config.update_score == true then ctx:score(util.score(data.score)) end
  if data.whitelisted then ctx:status("Whitelisted") end
  ctx:show{ value = obj.value, score = data.score, tags = data.tags or {} }
end

local M = {}

function M.lookup(obj, ctx)
  local data, why = query(obj, ctx, "/ioc")
  if not data then return nil, why end
  record(obj, ctx, data)
end

function M.hash(obj, ctx)
  local data, why = query(obj, ctx, "/hash")
  if not data then return nil, why end
  if data.crash then error("hash answer without score") end
  record(obj, ctx, data)
end

return M
