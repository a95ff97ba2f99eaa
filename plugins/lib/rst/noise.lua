-- rst/noise.lua: RST Noise Control (GET {base_url}/benign/lookup?value=, spec section 3) for
-- one indicator: the entry `check` shared by the rst-noise-control operation and its bulk
-- action, and the mapping of a verdict to attributes and optional status/score changes.
-- The API always answers 200 with {value, type, benign, reason}, benign being the STRING
-- "true"/"false" and reason "Drop <category>", "Change Score <category>" or "Not Found in
-- our database". A value not listed is a success that shows found = false, records nothing.
local changes = require "rst.changes"
local client = require "rst.client"
local parse = require "rst.parse"

local M = {}

M.PRODUCT = "RST Noise Control"
M.DROP = "Drop"
M.CHANGE = "Change Score"
M.NOT_LISTED = "Not Listed"

M.INDICATOR_TYPES = { "IP Address", "FQDN", "URL", "MD5", "SHA-1", "SHA-256" }

-- Reason prefixes, longest first so that "Change Score" is not read as a category.
local ACTIONS = { { "Change Score", M.CHANGE }, { "Drop", M.DROP } }

-- Options from the plugin config, or nil, reason.
function M.options(config)
  local opts, err = {}, nil
  opts.whitelist_on_drop, err = parse.config_bool(config, "whitelist_on_drop", false)
  if opts.whitelist_on_drop == nil then
    return nil, err
  end
  opts.score_decrease, err = parse.config_int(config, "score_decrease_on_change", 0, 0, 10)
  if opts.score_decrease == nil then
    return nil, err
  end
  return opts
end

-- verdict, category of a reason: ("Drop", "DNS/Public DNS/Google") etc.; (nil, nil) when the
-- reason carries no known action.
function M.parse_reason(reason)
  local r = parse.text(reason) or ""
  for _, a in ipairs(ACTIONS) do
    local prefix = a[1]
    if r:sub(1, #prefix):lower() == prefix:lower() then
      local rest = r:sub(#prefix + 1)
      if rest == "" or rest:match("^[%s:]") then
        local category = rest:gsub("^[%s:]+", ""):gsub("/+$", "")
        return a[2], category ~= "" and category or nil
      end
    end
  end
  return nil, nil
end

-- The analyst's view and the change set of an answer, or nil, reason for a body that is
-- not a Noise Control verdict. obj_score is the object's current score (0-10).
function M.map(data, value, opts, obj_score)
  local benign = parse.flag(data.benign)
  if benign ~= "true" and benign ~= "false" then
    return nil, nil, "RST API returned an unexpected Noise Control answer (no 'benign' field)"
  end
  local reason = parse.text(data.reason)
  local show = { product = M.PRODUCT, value = value, type = parse.text(data.type),
                 benign = benign == "true", reason = reason }
  local cs = changes.new()
  if benign == "false" then
    show.found, show.verdict = false, M.NOT_LISTED
    show.message = "not listed in RST Noise Control"
    return cs, show
  end
  local verdict, category = M.parse_reason(reason)
  -- benign without a known action: listed, but nothing tells us how to treat it.
  show.found, show.verdict, show.category = true, verdict or "Listed", category
  cs:attribute("RST Noise Control Verdict", show.verdict)
  cs:attribute("RST Noise Control Reason", reason)
  cs:attribute("RST Noise Control Category", category)
  if verdict == M.DROP and opts.whitelist_on_drop then
    cs.status = "Whitelisted"
  end
  if verdict == M.CHANGE and opts.score_decrease > 0 then
    local current = parse.num(obj_score) or 0
    cs.score = math.max(0, math.min(10, math.floor(current) - opts.score_decrease))
  end
  show.changes = cs:summary()
  return cs, show
end

-- Entry: ask Noise Control about obj.value. Returns nothing when answered (listed or not),
-- nil, reason on any failure.
function M.check(obj, ctx)
  local value = obj and parse.text(obj.value)
  if value == nil then
    return nil, "the object has no value to check"
  end
  local opts, oerr = M.options(ctx.config)
  if opts == nil then
    return nil, oerr
  end
  local data, err = client.get(ctx, "/benign/lookup", { value = value })
  if data == nil then
    return nil, err
  end
  local cs, show, merr = M.map(data, value, opts, obj.score)
  if cs == nil then
    return nil, merr
  end
  cs:apply(ctx)
  ctx:show(show)
end

return M
