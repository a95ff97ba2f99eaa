-- rst/whois.lua: RST Whois API (spec section 4) for one FQDN or URL: the entry `whois` shared
-- by the rst-whois-api operation and its bulk action, and the mapping of a WHOIS record to
-- attributes. A URL is reduced to its host, and every host to its registered domain (the
-- API would answer a subdomain with that domain's record anyway; asking for it directly
-- shares one cached answer). The variant (config `variant`) picks the endpoint:
-- standard /whois/{d}, extended /whois/full/{d}, raw /whois/raw/{d}. An answer with
-- dataError is a success that shows found = false and records nothing.
local changes = require "rst.changes"
local client = require "rst.client"
local iocs = require "ioc"
local parse = require "rst.parse"

local M = {}

M.PRODUCT = "RST Whois API"
M.INDICATOR_TYPES = { "FQDN", "URL" }
M.VARIANTS = { standard = "/whois/", extended = "/whois/full/", raw = "/whois/raw/" }

local MAX_RAW = 16 * 1024 -- bytes of a raw WHOIS text kept in the analyst's view
local DAY = 86400

-- Record fields written as single attributes: API key, attribute name, reader.
local FIELDS = {
  { "registrar", "Registrar" },
  { "registrant", "Registrant" },
  { "registrant_org", "Registrant Organization" },
  { "registrant_email", "Registrant Email" },
  { "registrant_country", "Registrant Country" },
  { "registrar_iana_id", "Registrar IANA ID" },
  { "whois_server", "WHOIS Server" },
  { "dnssec", "DNSSEC" },
}
local DATES = {
  { "created_on", "Domain Created" },
  { "updated_on", "Domain Updated" },
  { "expires_on", "Domain Expires" },
}
-- Keys mapped above or handled apart, so that the rest can be shown as details.
local HANDLED = { domain = true, nameservers = true, status = true, age = true, raw = true,
                  dataError = true }
for _, f in ipairs(FIELDS) do
  HANDLED[f[1]] = true
end
for _, f in ipairs(DATES) do
  HANDLED[f[1]] = true
end

-- Options from the plugin config, or nil, reason.
function M.options(config)
  local variant, err = parse.config_choice(config, "variant", "standard",
                                           { "standard", "extended", "raw" })
  if variant == nil then
    return nil, err
  end
  return { variant = variant }
end

-- The registered domain to ask about for obj, or nil, reason.
function M.domain_of(obj)
  local value = parse.text(obj.value)
  if value == nil then
    return nil, "the object has no value"
  end
  local host = value
  if obj.indicator_type == "URL" or value:find("://", 1, true) then
    local h, err = iocs.domain(value)
    if h == nil then
      return nil, string.format("cannot read the host of URL %s: %s", value, tostring(err))
    end
    host = h
  end
  local t = iocs.type(host)
  if t == "IP Address" or t == "IPv6 Address" then
    return nil, string.format("WHOIS needs a domain name, but %s is an IP address", host)
  end
  local domain, err = iocs.registered_domain(host)
  if domain == nil then
    return nil, string.format("%s has no registered domain: %s", host, tostring(err))
  end
  return domain:lower()
end

-- Age in days: the API's, else computed from the creation date.
local function age_days(data, created, now)
  local age = parse.int(data.age)
  if age and age > 0 then
    return age
  end
  local t = created and parse.epoch(created)
  if t and now and now > t then
    return (now - t) // DAY
  end
  return nil
end

-- Scalar fields nobody mapped (the extended variant's are not documented): shown as is.
local function details(data)
  local out, any = {}, false
  for k, v in pairs(data) do
    if not HANDLED[k] and (type(v) == "string" or type(v) == "number" or type(v) == "boolean") then
      out[k] = v
      any = true
    end
  end
  return any and out or nil
end

-- The view of an answer without registration data.
local function no_data_show(domain, value, data)
  local why = parse.text(data.dataError) or "no registration data"
  return { found = false, no_data = true, product = M.PRODUCT, value = value, domain = domain,
           message = string.format("no WHOIS data for %s: %s", domain, why) }
end

-- (changes, show) of an answer, or nil, nil, reason when the body is not a WHOIS answer.
-- now (epoch seconds) is used only when the API gives no age.
function M.map(data, domain, value, variant, now)
  local cs = changes.new()
  if data.domain == nil and data.dataError ~= nil then
    return cs, no_data_show(domain, value, data)
  end
  local answered = parse.text(data.domain)
  if answered == nil then
    return nil, nil,
           "RST API returned an unexpected Whois answer (neither 'domain' nor 'dataError')"
  end
  local show = { found = true, product = M.PRODUCT, value = value, domain = answered,
                 variant = variant }
  cs:attribute("Registered Domain", answered)
  for _, f in ipairs(FIELDS) do
    local v = parse.text(data[f[1]], parse.UNKNOWN)
    cs:attribute(f[2], v)
    show[f[1]] = v
  end
  for _, f in ipairs(DATES) do
    local v = parse.date_text(data[f[1]])
    cs:attribute(f[2], v)
    show[f[1]] = v
  end
  show.age_days = age_days(data, show.created_on, now)
  cs:attribute("Domain Age (days)", show.age_days)
  local ns, statuses = parse.csv(data.nameservers), parse.csv(data.status)
  for i, n in ipairs(ns) do
    ns[i] = n:lower()
  end
  cs:attributes_of("Name Server", ns)
  cs:attributes_of("Domain Status", statuses)
  show.name_servers = #ns > 0 and ns or nil
  show.statuses = #statuses > 0 and statuses or nil
  show.details = details(data)
  local raw = type(data.raw) == "string" and data.raw or nil
  if raw and #raw > MAX_RAW then
    raw = raw:sub(1, MAX_RAW) .. "\n[truncated]"
  end
  show.raw = raw
  show.changes = cs:summary()
  return cs, show
end

-- Entry: WHOIS of obj's registered domain. Returns nothing when answered (with or without
-- data), nil, reason on any failure.
function M.whois(obj, ctx)
  if obj == nil then
    return nil, "no object"
  end
  local opts, oerr = M.options(ctx.config)
  if opts == nil then
    return nil, oerr
  end
  local domain, derr = M.domain_of(obj)
  if domain == nil then
    return nil, derr
  end
  local data, err = client.get(ctx, M.VARIANTS[opts.variant] .. client.segment(domain))
  if data == nil then
    return nil, err
  end
  local cs, show, merr = M.map(data, domain, obj.value, opts.variant, os.time())
  if cs == nil then
    return nil, merr
  end
  cs:apply(ctx)
  ctx:show(show)
end

return M
