-- whois_spec.lua: the rst-whois-api operation against recorded RST Whois API answers
-- (spec/fixtures, recorded from rstsim). Run with `tqhost plugin test plugins/rst-whois-api`.
local T = require "tqhost.test"
local S = require "rst.spec"
local values, one, contains, assert_no_changes = S.values, S.one, S.contains, S.assert_no_changes

local KEY = "test-key-3be95d10"

local function run(itype, value, fixture, config, secrets)
  return T.run{
    entry = "whois",
    object = { type = "indicator", indicator_type = itype, value = value, score = 5,
               status = "Active", attributes = {} },
    config = config or {},
    secrets = secrets or { api_key = KEY },
    replay = "spec/fixtures/" .. fixture,
  }
end

describe("rst-whois-api standard record of an FQDN", function()
  local r = run("FQDN", "beta-c2-org.org", "standard.json")

  it("succeeds and shows the record", function()
    assert.are.equal("ok", r.status)
    assert.is_true(r.show.found)
    assert.are.equal("beta-c2-org.org", r.show.domain)
    assert.are.equal("standard", r.show.variant)
  end)

  it("writes registrar, registrant, organisation and the dates", function()
    assert.are.equal("beta-c2-org.org", one(r, "Registered Domain"))
    assert.are.equal("GoDaddy.com, LLC", one(r, "Registrar"))
    assert.are.equal("Privacy Protection", one(r, "Registrant"))
    assert.are.equal("Privacy Protection", one(r, "Registrant Organization"))
    assert.are.equal("2020-06-02 21:23:25", one(r, "Domain Created"))
    assert.are.equal("2023-08-28 23:51:50", one(r, "Domain Updated"))
    assert.are.equal("2027-06-01 21:23:25", one(r, "Domain Expires"))
    assert.are.equal("2038", one(r, "Domain Age (days)"))
  end)

  it("skips RST's 'unknown' placeholder", function()
    assert.are.same({}, values(r, "Registrant Email"))
  end)

  it("writes each name server and status", function()
    assert.are.same({ "ns1.dnsowl.com", "ns2.dnsowl.com", "ns3.dnsowl.com" },
                    values(r, "Name Server"))
    assert.are.same({ "clientDeleteProhibited" }, values(r, "Domain Status"))
  end)

  it("writes no extended fields and shows no raw text", function()
    assert.are.same({}, values(r, "Registrant Country"))
    assert.is_nil(r.show.raw)
  end)
end)

describe("rst-whois-api reduces names to the registered domain", function()
  it("a subdomain FQDN asks for its registered domain", function()
    local r = run("FQDN", "mail.beta-c2-org.org", "standard.json")
    assert.are.equal("ok", r.status)
    assert.are.equal("beta-c2-org.org", r.show.domain)
    assert.are.equal("GoDaddy.com, LLC", one(r, "Registrar"))
  end)

  it("a URL asks for the registered domain of its host", function()
    local r = run("URL", "https://login.portal.beta-c2-org.org/path?x=1", "standard.json")
    assert.are.equal("ok", r.status)
    assert.are.equal("beta-c2-org.org", one(r, "Registered Domain"))
    assert.are.equal("https://login.portal.beta-c2-org.org/path?x=1", r.show.value)
  end)

  it("a URL whose host is an IP address fails clearly", function()
    local r = run("URL", "http://198.51.100.23:8080/gate.php", "standard.json")
    assert.are.equal("failed", r.status)
    assert.matches("is an IP address", r.message)
    assert_no_changes(r)
  end)
end)

describe("rst-whois-api variants", function()
  it("extended asks /whois/full/ and writes the extra fields", function()
    local r = run("FQDN", "beta-c2-org.org", "extended.json", { variant = "extended" })
    assert.are.equal("ok", r.status)
    assert.are.equal("extended", r.show.variant)
    assert.are.equal("RU", one(r, "Registrant Country"))
    assert.are.equal("1999", one(r, "Registrar IANA ID"))
    assert.are.equal("whois.online", one(r, "WHOIS Server"))
    assert.are.equal("unsigned", one(r, "DNSSEC"))
    assert.are.equal("whois", r.show.details.source)
  end)

  it("raw asks /whois/raw/ and shows the server's text without storing it", function()
    local r = run("FQDN", "beta-c2-org.org", "raw.json", { variant = "raw" })
    assert.are.equal("ok", r.status)
    assert.matches("Domain Name: BETA%-C2%-ORG%.ORG", r.show.raw)
    assert.are.equal("GoDaddy.com, LLC", one(r, "Registrar"))
    for _, a in ipairs(r.changes.attributes) do
      assert.is_nil(a.value:find("Domain Name:", 1, true))
    end
  end)

  it("an unknown variant fails before any request", function()
    local r = run("FQDN", "beta-c2-org.org", "standard.json", { variant = "verbose" })
    assert.are.equal("failed", r.status)
    assert.matches("config variant", r.message)
  end)
end)

describe("rst-whois-api without registration data", function()
  local r = run("FQDN", "nowhois-site.com", "no_data.json")

  it("is a success that shows found = false and the API's dataError", function()
    assert.are.equal("ok", r.status)
    assert.is_false(r.show.found)
    assert.is_true(r.show.no_data)
    assert.are.equal("no WHOIS data for nowhois-site.com: no registration data", r.show.message)
  end)

  it("records no change", function()
    assert_no_changes(r)
  end)
end)

describe("rst-whois-api failures", function()
  local function failed(fixture, pattern, config, secrets)
    local r = run("FQDN", "beta-c2-org.org", fixture, config, secrets)
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

  it("no API key configured", function()
    failed("standard.json", "API key not configured", nil, {})
  end)
end)

describe("rst-whois-api secrets", function()
  it("never puts the API key in what it shows or writes", function()
    local r = run("FQDN", "beta-c2-org.org", "raw.json", { variant = "raw" })
    assert.are.equal("ok", r.status)
    assert.is_false(contains(r.show, KEY))
    assert.is_false(contains(r.changes, KEY))
  end)
end)
