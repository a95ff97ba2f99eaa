-- NaN, infinities and huge numbers where the host takes a time, a size or a score. NaN and
-- out-of-range values must be refused with an error; a huge timeout is capped at the run's
-- deadline (no undefined conversion: the sanitizer build aborts on one).
local M = {}

function M.lookup(obj, ctx)
  local opts = function(t)
    return { query = { value = obj.value }, headers = { ["X-Api-Key"] = "x" }, timeout = t }
  end
  local url = ctx.config.target .. "/ioc"
  local taken = {}
  local function refused(what, f)
    local ok, r = pcall(f)
    if ok and r ~= nil then taken[#taken + 1] = what end
  end
  refused("http timeout NaN", function() return http.get(url, opts(0 / 0)) end)
  refused("http timeout -inf", function() return http.get(url, opts(-math.huge)) end)
  refused("http.sleep(NaN)", function() http.sleep(0 / 0) return true end)
  refused("http.sleep(-inf)", function() http.sleep(-math.huge) return true end)
  refused("ctx:score(NaN)", function() ctx:score(0 / 0) return true end)
  refused("ctx:score(1e308)", function() ctx:score(1e308) return true end)
  refused("ctx:score(-1e308)", function() ctx:score(-1e308) return true end)
  refused("tq.search limit NaN", function() return tq.search { limit = 0 / 0 } end)
  -- a huge timeout or limit is legal and must work, capped
  local resp, err = http.get(url, opts(1e308))
  if not resp then return nil, "a huge timeout failed: " .. err.kind .. ": " .. tostring(err.message) end
  pcall(tq.search, { limit = 1e308 })
  pcall(tq.search, { limit = 2 ^ 63 })
  if #taken > 0 then return nil, "BREACH: accepted " .. table.concat(taken, ", ") end
  return nil, "contained: every NaN and out-of-range number refused"
end

return M
