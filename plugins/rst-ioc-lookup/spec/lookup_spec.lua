-- lookup_spec.lua: the rst-ioc-lookup operation against recorded RST IoC Lookup answers
-- (spec/fixtures, recorded from rstsim or written from the API spec). Run with
-- `tqhost plugin test plugins/rst-ioc-lookup`.
local T = require "tqhost.test"
local S = require "rst.spec"
local values, one, contains, assert_no_changes = S.values, S.one, S.contains, S.assert_no_changes

local KEY = "test-key-5f0c2d9e"

local function run(itype, value, fixture, config, secrets)
  return T.run{
    entry = "lookup",
    object = { type = "indicator", indicator_type = itype, value = value, score = 5,
               status = "Active", attributes = {} },
    config = config or {},
    secrets = secrets or { api_key = KEY },
    replay = "spec/fixtures/" .. fixture,
  }
end

local function link(r, object_type, value)
  for _, l in ipairs(r.changes.links) do
    if l.object_type == object_type and l.value == value then
      return l
    end
  end
  return nil
end

local function indicator(r, itype, value)
  for _, i in ipairs(r.changes.indicators) do
    if i.type == itype and i.value == value then
      return i
    end
  end
  return nil
end

local function attr_of(ind, name)
  for _, a in ipairs(ind.attributes) do
    if a.name == name then
      return a.value
    end
  end
  return nil
end

describe("rst-ioc-lookup hit on an IP Address", function()
  local r = run("IP Address", "185.220.101.5", "ip_hit.json")

  it("succeeds and shows the indicator as found", function()
    assert.are.equal("ok", r.status)
    assert.is_true(r.show.found)
    assert.are.equal("185.220.101.5", r.show.value)
    assert.are.equal(6, r.show.score.total)
  end)

  it("writes the score and sub-scores parsed from string-typed numbers", function()
    assert.are.equal("6", one(r, "RST Score"))
    assert.are.equal("31", one(r, "RST Last Score"))
    assert.are.equal("51.18", one(r, "RST Source Confidence"))
    assert.are.equal("0.61", one(r, "RST Context Confidence"))
    assert.are.equal("0.2", one(r, "RST Relevance"))
  end)

  it("writes first and last seen as UTC date-times", function()
    assert.are.equal("2025-03-07 00:00:00", one(r, "First Seen"))
    assert.are.equal("2025-12-25 00:00:00", one(r, "Last Seen"))
  end)

  it("writes category, false-positive alarm, geo and ASN", function()
    assert.are.same({ "shellprobe" }, values(r, "Category"))
    assert.are.equal("false", one(r, "False Positive Alarm"))
    assert.are.same({}, values(r, "False Positive Reason"))
    assert.are.equal("China", one(r, "Country"))
    assert.are.equal("Shanghai", one(r, "City"))
    assert.are.equal("4134", one(r, "ASN"))
    assert.are.equal("Chinanet", one(r, "ASN Organization"))
    assert.are.same({}, values(r, "Cloud Provider"))
    assert.are.same({ "docspay51.org", "supportcdn73.io" }, values(r, "Related Domain"))
  end)

  it("writes sources and splits the comma-separated references", function()
    assert.are.same({ "threatreports", "vmray" }, values(r, "RST Source Feed"))
    assert.are.equal(2, #values(r, "Reference"))
    assert.matches("^https://www%.malwarebytes%.com/", values(r, "Reference")[1])
  end)

  it("does not write a port for RST's -1 placeholder", function()
    assert.are.same({}, values(r, "Port"))
  end)

  it("links the malware and the adversary named by the threat codes", function()
    local m = link(r, "malware", "Cobalt Strike")
    assert.is_not_nil(m)
    assert.are.equal("indicates", m.link_type)
    assert.matches("cobalt_strike", m.description)
    assert.is_not_nil(link(r, "adversary", "Educated Manticore"))
    assert.are.same({ "cobalt_strike", "educated_manticore_group" }, values(r, "Threat"))
  end)

  it("leaves the score alone by default", function()
    assert.is_nil(r.changes.score)
  end)
end)

describe("rst-ioc-lookup hit on an IPv6 Address", function()
  local r = run("IPv6 Address", "2001:db8::1", "ipv6_hit.json", { update_score = true })

  it("succeeds with the IPv6 value query-encoded", function()
    assert.are.equal("ok", r.status)
    assert.is_true(r.show.found)
    assert.are.equal("57", one(r, "RST Score"))
  end)

  it("links a named vulnerability (_vuln) and a malware-as-a-service family (_maas)", function()
    assert.is_not_nil(link(r, "vulnerability", "Citrix Bleed"))
    assert.is_not_nil(link(r, "malware", "Lumma"))
  end)

  it("maps the RST score 57 to the ThreatQ score 6 when update_score is on", function()
    assert.are.equal(6, r.changes.score)
  end)
end)

describe("rst-ioc-lookup hit on an FQDN", function()
  local r = run("FQDN", "beta-c2-org.org", "fqdn_hit.json")

  it("adds the resolved addresses as related IP Address indicators", function()
    assert.are.equal("ok", r.status)
    local a = indicator(r, "IP Address", "140.174.98.49")
    assert.is_not_nil(a)
    assert.are.equal("A record of beta-c2-org.org", attr_of(a, "RST Relation"))
    assert.is_not_nil(indicator(r, "IP Address", "4.247.136.239"))
    assert.are.equal(2, #r.changes.indicators)
  end)

  it("writes the WHOIS block of the answer", function()
    assert.are.equal("GoDaddy.com, LLC", one(r, "Registrar"))
    assert.are.equal("Privacy Protection", one(r, "Registrant"))
    assert.are.equal("2020-06-02 21:23:25", one(r, "Domain Created"))
    assert.are.equal("2027-06-01 21:23:25", one(r, "Domain Expires"))
    assert.are.equal("2038", one(r, "Domain Age (days)"))
    assert.are.equal("GoDaddy.com, LLC", r.show.whois.registrar)
  end)

  it("links the TTP as an attack pattern and the CVE as a vulnerability, upper-cased", function()
    assert.is_not_nil(link(r, "attack_pattern", "T1021.001"))
    assert.is_not_nil(link(r, "vulnerability", "CVE-2024-3400"))
    assert.are.same({ "T1021.001" }, values(r, "TTP"))
    assert.are.same({ "CVE-2024-3400" }, values(r, "CVE"))
  end)

  it("writes the industries", function()
    assert.are.same({ "government", "entertainment" }, values(r, "Industry"))
  end)

  it("links _group codes to adversaries by default", function()
    assert.is_not_nil(link(r, "adversary", "Educated Manticore"))
    assert.is_nil(link(r, "intrusion_set", "Educated Manticore"))
  end)

  it("links _group codes to intrusion sets when actor_object_type says so", function()
    local r2 = run("FQDN", "beta-c2-org.org", "fqdn_hit.json",
                   { actor_object_type = "intrusion_set" })
    assert.is_not_nil(link(r2, "intrusion_set", "Educated Manticore"))
    assert.is_nil(link(r2, "adversary", "Educated Manticore"))
  end)
end)

describe("rst-ioc-lookup hit on a URL", function()
  local r = run("URL", "http://198.51.100.23:8080/gate.php", "url_hit.json",
                { update_score = "true" })

  it("writes the last HTTP status", function()
    assert.are.equal("ok", r.status)
    assert.are.equal("301", one(r, "HTTP Status"))
    assert.are.equal(301, r.show.http_status)
    assert.are.equal("198.51.100.23", r.show.parsed.domain)
  end)

  it("links every TTP, CVE and the APT-like actor code in upper case", function()
    assert.is_not_nil(link(r, "attack_pattern", "T1059.001"))
    assert.is_not_nil(link(r, "attack_pattern", "T1059"))
    assert.is_not_nil(link(r, "attack_pattern", "T1595.002"))
    assert.is_not_nil(link(r, "vulnerability", "CVE-2021-44228"))
    assert.is_not_nil(link(r, "adversary", "TA505"))
    assert.is_not_nil(link(r, "malware", "Qakbot"))
  end)

  it("accepts update_score given as the text \"true\" (70 -> 7)", function()
    assert.are.equal(7, r.changes.score)
  end)
end)

describe("rst-ioc-lookup hit on hashes", function()
  it("MD5: writes file names, links the stealer family, adds no hash of itself", function()
    local r = run("MD5", "d41d8cd98f00b204e9800998ecf8427e", "md5_hit.json")
    assert.are.equal("ok", r.status)
    assert.are.same({ "loader.bin" }, values(r, "File Name"))
    assert.is_not_nil(link(r, "malware", "Redline"))
    assert.is_not_nil(link(r, "vulnerability", "CVE-2019-19781"))
    assert.are.equal(0, #r.changes.indicators)
  end)

  it("SHA-1: adds the MD5 and SHA-256 of the same file as related indicators", function()
    local r = run("SHA-1", "da39a3ee5e6b4b0d3255bfef95601890afd80709", "sha1_hit.json")
    assert.are.equal("ok", r.status)
    local md5 = indicator(r, "MD5", "d32d50cf90af5a530d1367287d4208fd")
    assert.is_not_nil(md5)
    assert.matches("same file as", attr_of(md5, "RST Relation"))
    assert.is_not_nil(indicator(r, "SHA-256",
      "de8f5946f7632d18e1e22ecba2e9f8ff0a36ccae51d9331ed07696fb4b28efe9"))
    assert.is_nil(indicator(r, "SHA-1", "da39a3ee5e6b4b0d3255bfef95601890afd80709"))
    assert.are.equal(2, #r.changes.indicators)
  end)

  it("SHA-256: adds the SHA-1 sibling and both file names", function()
    local r = run("SHA-256", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
                  "sha256_hit.json")
    assert.are.equal("ok", r.status)
    assert.is_not_nil(indicator(r, "SHA-1", "f1d67cd2c5e7bb5a978e5596845ffef15a1d9ac7"))
    assert.are.equal(1, #r.changes.indicators)
    assert.are.same({ "setup.msi", "invoice.exe" }, values(r, "File Name"))
    assert.are.same({ "generic", "malware" }, values(r, "Category"))
  end)
end)

describe("rst-ioc-lookup on the older answer shape with JSON numbers", function()
  local r = run("IP Address", "118.243.83.70", "numeric_hit.json", { update_score = true })

  it("parses numbers, epoch numbers and a list of references alike", function()
    assert.are.equal("ok", r.status)
    assert.are.equal("28", one(r, "RST Score"))
    assert.are.equal("70.71", one(r, "RST Source Confidence"))
    assert.are.equal("2020-09-16 00:00:00", one(r, "First Seen"))
    assert.are.equal("2020-11-10 00:00:00", one(r, "Last Seen"))
    assert.are.same({ "https://example.org/a", "https://example.org/b" }, values(r, "Reference"))
    assert.are.same({ "443" }, values(r, "Port"))
    assert.are.equal(3, r.changes.score)
  end)

  it("writes the false-positive alarm, its reason and the cloud provider", function()
    assert.are.equal("true", one(r, "False Positive Alarm"))
    assert.are.equal("Cloud provider IP", one(r, "False Positive Reason"))
    assert.are.equal("digitalocean", one(r, "Cloud Provider"))
    assert.are.equal("14061", one(r, "ASN"))
  end)
end)

describe("rst-ioc-lookup miss", function()
  local r = run("URL", "https://login-secure-bank.com/verify", "not_found.json",
                { update_score = true })

  it("is a success that shows found = false with a clear message", function()
    assert.are.equal("ok", r.status)
    assert.is_false(r.show.found)
    assert.are.equal("not found in RST IoC Lookup", r.show.message)
  end)

  it("records no change", function()
    assert_no_changes(r)
  end)
end)

describe("rst-ioc-lookup failures", function()
  local function failed(fixture, pattern, config, secrets)
    local r = run("IP Address", "185.220.101.5", fixture, config, secrets)
    assert.are.equal("failed", r.status)
    assert.matches(pattern, r.message)
    assert_no_changes(r)
    assert.is_nil(r.show)
  end

  it("429 after the host's retries", function()
    failed("rate_limited.json", "^RST API rate limit %(429%) after retries$")
  end)

  it("500", function()
    failed("server_error.json", "^RST API error: HTTP 500")
  end)

  it("a truncated JSON body", function()
    failed("truncated.json", "^RST API returned invalid JSON")
  end)

  it("a rejected key", function()
    failed("forbidden.json", "^API key rejected %(403%)$")
  end)

  it("a network failure", function()
    failed("unreachable.json", "^RST API unreachable: ")
  end)

  it("an API error other than Not Found in a 200 body", function()
    failed("api_error.json", "^RST API error: Invalid API request$")
  end)

  it("no API key configured (before any request)", function()
    failed("ip_hit.json", "API key not configured", nil, {})
  end)

  it("a config value that is not a boolean is refused before the script runs", function()
    local ok, err = pcall(run, "IP Address", "185.220.101.5", "ip_hit.json",
                          { update_score = "maybe" })
    assert.is_false(ok)
    assert.truthy(tostring(err):find("config update_score: 'maybe' is not a boolean", 1, true))
  end)

  it("gets update_score as a boolean, as the manifest declares it", function()
    local r = run("IP Address", "185.220.101.5", "ip_hit.json", { update_score = "yes" })
    assert.are.equal("ok", r.status)
  end)
end)

describe("rst-ioc-lookup config and secrets", function()
  it("strips a trailing '/' from base_url", function()
    local r = run("IP Address", "185.220.101.5", "ip_hit.json",
                  { base_url = "https://api.rstcloud.net/v1/" })
    assert.are.equal("ok", r.status)
  end)

  it("never puts the API key in what it shows or writes", function()
    local r = run("FQDN", "beta-c2-org.org", "fqdn_hit.json", { update_score = true })
    assert.are.equal("ok", r.status)
    assert.is_false(contains(r.show, KEY))
    assert.is_false(contains(r.changes, KEY))
    assert.is_false(contains(r.message, KEY))
  end)
end)
