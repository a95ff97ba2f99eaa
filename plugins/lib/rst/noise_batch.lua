-- rst/noise_batch.lua: RST Noise Control in bulk (spec section 3.1): POST the values of one
-- type to {base_url}/benign/batch/{type} (a newline-separated text body), then poll
-- POST {base_url}/benign/result/{type} with the returned token object: HTTP 301 while the job
-- is pending, 200 with one {value, type, benign, reason} per value when ready. Each verdict
-- goes through rst.noise.map, the mapping the single lookup uses, so a bulk verdict writes
-- exactly what the operation writes.
--
-- This file is the script of the rst-noise-control-action (actions/*.yaml): its entries are
-- `check` (one object, rst.noise.check) and `check_batch(items, ctx)` (the host's batch
-- protocol: items is the read-only list of the objects' views; each item's result goes
-- through its own ctx, c = ctx:item(i): the same change methods and show as a single run,
-- c:fail(reason) for a failed item; see docs/actions.md).
--
-- Polls are spaced by http.sleep (config batch_poll_interval, seconds, default 1; the run's
-- other work and every other run go on meanwhile), paced as well by the provider's rate
-- limit, and bounded by the config field batch_max_polls.
local client = require "rst.client"
local noise = require "rst.noise"
local parse = require "rst.parse"

local M = {}

-- ThreatQ indicator type to the {ioctype} path segment of the batch API.
local RST_TYPES = { ["IP Address"] = "ip", ["FQDN"] = "domain", ["URL"] = "url", ["MD5"] = "hash",
                    ["SHA-1"] = "hash", ["SHA-256"] = "hash" }

M.DEFAULT_MAX_POLLS = 300
M.DEFAULT_POLL_INTERVAL = 1 -- seconds between two polls of a pending result

-- Values are compared as the API may echo them: domains and hashes case-insensitively.
local function key_of(v)
  return tostring(v):lower()
end

-- POST base .. path; returns resp, or nil, reason.
local function post(ctx, path, opts)
  local base, berr = client.base_url(ctx)
  if not base then
    return nil, berr
  end
  local key = ctx.secret("api_key")
  if key == nil then
    return nil, "API key not configured: set api_key in the plugin configuration"
  end
  opts.headers = { ["X-Api-Key"] = key, ["Accept"] = "application/json",
                   ["Content-Type"] = opts.json and "application/json" or "text/plain" }
  local resp, err = http.post(base .. path, opts)
  if not resp then
    return nil, client.reason(err)
  end
  return resp
end

-- Submits the values; returns the token object, or nil, reason.
local function submit(ctx, rst_type, values)
  local resp, err = post(ctx, "/benign/batch/" .. rst_type, { body = table.concat(values, "\n") })
  if not resp then
    return nil, err
  end
  local token = resp:json()
  if type(token) ~= "table" or token.token == nil then
    return nil, "RST API returned no batch token (HTTP " .. tostring(resp.status) .. ")"
  end
  return token
end

-- Polls until the results are ready, interval seconds apart; returns the list of answers,
-- or nil, reason.
local function poll(ctx, rst_type, token, max_polls, interval)
  for n = 1, max_polls do
    if n > 1 and interval > 0 then
      http.sleep(interval * 1000)
    end
    local resp, err = post(ctx, "/benign/result/" .. rst_type, { json = token })
    if not resp then
      return nil, err
    end
    if resp.status == 200 then
      local list = resp:json()
      if type(list) ~= "table" then
        return nil, "RST API returned invalid JSON for the batch result"
      end
      return list
    end
    if resp.status ~= 301 then
      return nil, "RST API answered the batch result with HTTP " .. tostring(resp.status)
    end
  end
  return nil, string.format("the batch result was still pending after %d polls", max_polls)
end

-- Records the verdict of item i (object it) through its item ctx c, exactly as
-- rst.noise.check records a single lookup's.
local function record(c, it, answer, opts)
  if answer == nil then
    c:fail("no verdict for this value in the batch result")
    return
  end
  local cs, show, merr = noise.map(answer, it.value, opts, it.score)
  if cs == nil then
    c:fail(merr)
    return
  end
  cs:apply(c)
  c:show(show)
end

-- Answers matched to the submitted items: by value, else by position (the API answers in
-- submission order).
local function match(items, list)
  local by_value = {}
  for _, a in ipairs(list) do
    if type(a) == "table" and a.value ~= nil then
      by_value[key_of(a.value)] = a
    end
  end
  local out = {}
  for i, it in ipairs(items) do
    local a = by_value[key_of(it.value)]
    if a == nil and #list == #items and type(list[i]) == "table" and list[i].value == nil then
      a = list[i]
    end
    out[i] = a
  end
  return out
end

-- Entry: the verdicts of a list of objects of one indicator type (see the file's header).
function M.check_batch(items, ctx)
  if type(items) ~= "table" or #items == 0 then
    return nil, "the batch has no objects"
  end
  local itype = items[1].indicator_type
  local rst_type = RST_TYPES[itype]
  if rst_type == nil then
    return nil, "RST Noise Control has no batch lookup for " .. tostring(itype)
  end
  local opts, oerr = noise.options(ctx.config)
  if opts == nil then
    return nil, oerr
  end
  local max_polls = parse.int(ctx.config.batch_max_polls) or M.DEFAULT_MAX_POLLS
  local interval = parse.num(ctx.config.batch_poll_interval) or M.DEFAULT_POLL_INTERVAL
  if interval < 0 then
    return nil, "config batch_poll_interval: must be a number of seconds >= 0"
  end
  local values = {}
  for i, it in ipairs(items) do
    values[i] = it.value
  end
  local token, serr = submit(ctx, rst_type, values)
  if token == nil then
    return nil, serr
  end
  local list, perr = poll(ctx, rst_type, token, max_polls, interval)
  if list == nil then
    return nil, perr
  end
  local answers = match(items, list)
  for i, it in ipairs(items) do
    record(ctx:item(i), it, answers[i], opts)
  end
  log.info("%s: batch of %d %s values answered", noise.PRODUCT, #items, rst_type)
end

-- Entry: one object, exactly as the rst-noise-control operation.
M.check = noise.check

return M
