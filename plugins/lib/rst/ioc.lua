-- rst/ioc.lua: RST IoC Lookup (GET {base_url}/ioc?value=, spec section 2) for one indicator:
-- the entry `lookup` shared by the rst-ioc-lookup operation and its bulk action, and the pure
-- mapping of an answer to ThreatQ attributes, links and related indicators plus what the
-- analyst sees. A miss ({"error": "Not Found"} with HTTP 200) is a success that shows
-- found = false and records nothing; the bulk runner counts it from show.found.
local changes = require "rst.changes"
local client = require "rst.client"
local parse = require "rst.parse"
local threat = require "rst.threat"

local M = {}

M.PRODUCT = "RST IoC Lookup"
M.NOT_FOUND = "not found in RST IoC Lookup"

-- ThreatQ indicator types the API accepts (manifest operations[].indicator_types).
M.INDICATOR_TYPES = { "IP Address", "IPv6 Address", "FQDN", "URL", "MD5", "SHA-1", "SHA-256" }

-- Sibling hash fields of a hash answer and their ThreatQ types.
local HASHES = { { "md5", "MD5" }, { "sha1", "SHA-1" }, { "sha256", "SHA-256" } }

-- The link type of the indicator to every object derived from it (STIX relationship type,
-- as RST's own connectors use).
local LINK = "indicates"

-- The last options made and the config values they came from: every run of a bulk action
-- has the same config.
local memo = { ready = false }

-- Options from the plugin config, or nil, reason. The table returned is shared: read only.
function M.options(config)
  local us, at = config.update_score, config.actor_object_type
  if memo.ready and memo.us == us and memo.at == at then
    return memo.opts
  end
  local opts, err = {}, nil
  opts.update_score, err = parse.config_bool(config, "update_score", false)
  if opts.update_score == nil then
    return nil, err
  end
  opts.actor_type, err = parse.config_choice(config, "actor_object_type", "adversary",
                                             { "adversary", "intrusion_set" })
  if opts.actor_type == nil then
    return nil, err
  end
  memo.ready, memo.us, memo.at, memo.opts = true, us, at, opts
  return opts
end

-- nil for an empty list, so that the analyst's view has no empty sections.
local function some(list)
  return (list and #list > 0) and list or nil
end

local function tbl(v)
  return type(v) == "table" and v or {}
end

-- RST score (0-100) to a ThreatQ score (0-10), rounded half up.
function M.tq_score(total)
  local n = math.floor(total / 10 + 0.5)
  return math.max(0, math.min(10, n))
end

-- score block: attributes, the ThreatQ score when asked, the analyst's view.
local function map_score(cs, show, data, opts)
  local s = tbl(data.score)
  local total, last = parse.num(s.total), parse.num(s.last)
  local src, ctxs, freq = parse.num(s.src), parse.num(s.tags), parse.num(s.frequency)
  cs:attribute("RST Score", total and parse.fmt_num(total))
  cs:attribute("RST Last Score", last and parse.fmt_num(last))
  cs:attribute("RST Source Confidence", src and parse.fmt_num(src))
  cs:attribute("RST Context Confidence", ctxs and parse.fmt_num(ctxs))
  cs:attribute("RST Relevance", freq and parse.fmt_num(freq))
  if opts.update_score and total then
    cs.score = M.tq_score(total)
  end
  if show then
    show.score = { total = total, last = last, source_confidence = src,
                   context_confidence = ctxs, relevance = freq }
  end
end

-- Threat names, TTPs and CVEs: attributes and links to the objects they name.
local function map_threats(cs, show, data, opts)
  local threats = parse.list(data.threat)
  local named, ttps, cves = show and {}, show and {}, show and {}
  for _, code in ipairs(threats) do
    cs:attribute("Threat", code)
    local otype, name, kind = threat.classify(code, opts.actor_type)
    if otype then
      cs:link(otype, name, LINK, "RST threat " .. code)
      if named then
        named[#named + 1] = { code = code, object_type = otype, name = name, kind = kind }
      end
    end
  end
  for _, t in ipairs(parse.list(data.ttp)) do
    local id = threat.technique_id(t)
    if id then
      if ttps then
        ttps[#ttps + 1] = id
      end
      cs:attribute("TTP", id)
      cs:link("attack_pattern", id, LINK, "MITRE ATT&CK technique reported by RST")
    end
  end
  for _, c in ipairs(parse.list(data.cve)) do
    local id = threat.cve_id(c)
    if id then
      if cves then
        cves[#cves + 1] = id
      end
      cs:attribute("CVE", id)
      cs:link("vulnerability", id, LINK, "CVE reported by RST")
    end
  end
  if show then
    show.threats, show.ttps, show.cves = some(named), some(ttps), some(cves)
  end
end

-- Categories, dates, false-positive flag, sources and references.
local function map_context(cs, show, data)
  local categories = parse.list(tbl(data.tags).str)
  cs:attributes_of("Category", categories)
  local first, last = parse.datetime(data.fseen), parse.datetime(data.lseen)
  cs:attribute("First Seen", first)
  cs:attribute("Last Seen", last)
  local industries = parse.list(data.industry)
  cs:attributes_of("Industry", industries)
  local fp = tbl(data.fp)
  local alarm, reason = parse.flag(fp.alarm), parse.text(fp.descr)
  cs:attribute("False Positive Alarm", alarm)
  cs:attribute("False Positive Reason", reason)
  local src = tbl(data.src)
  local feeds, refs = parse.list(src.name), parse.csv(src.report)
  cs:attributes_of("RST Source Feed", feeds)
  cs:attributes_of("Reference", refs)
  local ports = show and {}
  for _, p in ipairs(parse.list(data.ports)) do
    local n = parse.int(p)
    if n and n > 0 then
      if ports then
        ports[#ports + 1] = n
      end
      cs:attribute("Port", n)
    end
  end
  if not show then
    return
  end
  show.first_seen, show.last_seen = first, last
  show.collected = parse.datetime(data.collect)
  show.categories, show.industries = some(categories), some(industries)
  show.false_positive = alarm and { alarm = alarm, reason = reason } or nil
  show.sources, show.references, show.ports = some(feeds), some(refs), some(ports)
  show.description = parse.text(data.description)
end

-- IP answers: network owner and location.
local function map_ip(cs, show, data)
  local asn, geo = tbl(data.asn), tbl(data.geo)
  local num = parse.int(asn.num)
  local org, isp, cloud = parse.text(asn.org), parse.text(asn.isp), parse.text(asn.cloud)
  cs:attribute("ASN", num and num > 0 and num or nil)
  cs:attribute("ASN Organization", org)
  cs:attribute("ISP", isp)
  cs:attribute("Cloud Provider", cloud)
  local country, region = parse.text(geo.country), parse.text(geo.region)
  local city = parse.text(geo.city)
  cs:attribute("Country", country)
  cs:attribute("Region", region)
  cs:attribute("City", city)
  local related = parse.list(tbl(data.related).domains)
  cs:attributes_of("Related Domain", related)
  if not show then
    return
  end
  if next(asn) or next(geo) then
    show.network = { asn = num, organization = org, isp = isp, cloud = cloud, country = country,
                     region = region, city = city }
  end
  show.related_domains = some(related)
end

-- The ThreatQ type of a resolved address.
local function ip_type(addr)
  return addr:find(":", 1, true) and "IPv6 Address" or "IP Address"
end

-- Domain answers: DNS records as related indicators, WHOIS as attributes.
local function map_domain(cs, show, data, value)
  local resolved = tbl(data.resolved)
  local dns = tbl(resolved.ip)
  local a, cname, alias = parse.list(dns.a), parse.list(dns.cname), parse.list(dns.alias)
  for _, addr in ipairs(a) do
    cs:indicator(ip_type(addr), addr, { ["RST Relation"] = "A record of " .. value })
  end
  for _, name in ipairs(cname) do
    cs:indicator("FQDN", name, { ["RST Relation"] = "CNAME of " .. value })
  end
  cs:attributes_of("DNS Alias", alias)
  if show then
    show.resolved = (#a + #cname + #alias > 0) and { a = some(a), cname = some(cname),
                                                     alias = some(alias) } or nil
  end
  local w = tbl(resolved.whois)
  if parse.flag(w.havedata) ~= "true" then
    return
  end
  local age = parse.int(w.age)
  local whois = {
    registrar = parse.text(w.registrar, parse.UNKNOWN),
    registrant = parse.text(w.registrant, parse.UNKNOWN),
    created = parse.date_text(w.created),
    updated = parse.date_text(w.updated),
    expires = parse.date_text(w.expires),
    age_days = age and age > 0 and age or nil,
  }
  cs:attribute("Registrar", whois.registrar)
  cs:attribute("Registrant", whois.registrant)
  cs:attribute("Domain Created", whois.created)
  cs:attribute("Domain Updated", whois.updated)
  cs:attribute("Domain Expires", whois.expires)
  cs:attribute("Domain Age (days)", whois.age_days)
  if show then
    show.whois = whois
  end
end

-- URL answers: the last HTTP status and the parsed parts.
local function map_url(cs, show, data)
  local status = parse.int(tbl(data.resolved).status)
  if status and status > 0 then
    cs:attribute("HTTP Status", status)
    if show then
      show.http_status = status
    end
  end
  local p = tbl(data.parsed)
  if show and next(p) then
    show.parsed = { scheme = parse.text(p.schema), domain = parse.text(p.domain),
                    port = parse.int(p.port), path = parse.text(p.path),
                    params = parse.text(p.params) }
  end
end

-- Hash answers: the other hashes of the same file as related indicators, file names.
local function map_hash(cs, show, data, value)
  local hashes = {}
  for _, h in ipairs(HASHES) do
    local v = parse.text(data[h[1]])
    if v then
      hashes[h[1]] = v:lower()
      if v:lower() ~= value:lower() then
        cs:indicator(h[2], v:lower(), { ["RST Relation"] = "same file as " .. value })
      end
    end
  end
  local names = parse.list(data.filename)
  cs:attributes_of("File Name", names)
  if not show then
    return
  end
  show.hashes = next(hashes) and hashes or nil
  show.file_names = some(names)
end

-- Whether an answer is a miss, or nil, reason for an API error carried in a 200 body.
function M.is_miss(data)
  local e = parse.text(data.error)
  if e and e:lower() == "not found" then
    return true
  end
  if e then
    return nil, "RST API error: " .. e
  end
  return data.id == nil
end

-- Maps a hit to (changes, show). value is the looked-up value; opts from M.options. With
-- outcome_only (a bulk run, where the host reads only show.found) show is just {found = true}
-- and the analyst's view is not built.
function M.map(data, value, opts, outcome_only)
  local cs = changes.new()
  if outcome_only then
    M.map_changes(cs, data, value, opts, nil)
    return cs, { found = true }
  end
  local show = { found = true, product = M.PRODUCT, value = value,
                 ioc_type = parse.text(data.ioc_type), rst_id = parse.text(data.id) }
  M.map_changes(cs, data, value, opts, show)
  show.changes = cs:summary()
  return cs, show
end

-- Fills cs (and show, unless nil) from a hit.
function M.map_changes(cs, data, value, opts, show)
  map_score(cs, show, data, opts)
  map_context(cs, show, data)
  map_threats(cs, show, data, opts)
  if data.asn ~= nil or data.geo ~= nil then
    map_ip(cs, show, data)
  end
  if type(tbl(data.resolved).ip) == "table" or type(tbl(data.resolved).whois) == "table" then
    map_domain(cs, show, data, value)
  end
  if data.parsed ~= nil or parse.num(tbl(data.resolved).status) then
    map_url(cs, show, data)
  end
  if data.md5 ~= nil or data.sha1 ~= nil or data.sha256 ~= nil or data.filename ~= nil then
    map_hash(cs, show, data, value)
  end
end

-- The view of a miss.
function M.not_found_show(value)
  return { found = false, product = M.PRODUCT, value = value, message = M.NOT_FOUND }
end

-- Entry: look obj.value up and record what RST knows about it. Returns nothing on a hit
-- and on a miss (show.found tells them apart), nil, reason on any failure.
function M.lookup(obj, ctx)
  local value = obj and parse.text(obj.value)
  if value == nil then
    return nil, "the object has no value to look up"
  end
  local opts, oerr = M.options(ctx.config)
  if opts == nil then
    return nil, oerr
  end
  local data, err = client.get(ctx, "/ioc", { value = value })
  if data == nil then
    return nil, err
  end
  local miss, merr = M.is_miss(data)
  if miss == nil then
    return nil, merr
  end
  if miss then
    log.info("%s: %s is not in RST's database", M.PRODUCT, value)
    ctx:show(M.not_found_show(value))
    return
  end
  local cs, show = M.map(data, value, opts, ctx.outcome_only)
  cs:apply(ctx)
  ctx:show(show)
end

return M
