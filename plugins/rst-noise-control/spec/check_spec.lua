-- check_spec.lua: the rst-noise-control operation against recorded RST Noise Control answers
-- (spec/fixtures, recorded from rstsim). Run with `tqhost plugin test plugins/rst-noise-control`.
local T = require "tqhost.test"
local S = require "rst.spec"
local values, one, contains, assert_no_changes = S.values, S.one, S.contains, S.assert_no_changes

local KEY = "test-key-8a41c7e2"

local function run(itype, value, fixture, config, score, secrets)
  return T.run{
    entry = "check",
    object = { type = "indicator", indicator_type = itype, value = value, score = score or 5,
               status = "Active", attributes = {} },
    config = config or {},
    secrets = secrets or { api_key = KEY },
    replay = "spec/fixtures/" .. fixture,
  }
end

describe("rst-noise-control verdict Drop", function()
  it("IP Address: writes verdict, reason and category, changes nothing else by default", function()
    local r = run("IP Address", "8.8.8.8", "ip_drop.json")
    assert.are.equal("ok", r.status)
    assert.is_true(r.show.found)
    assert.are.equal("Drop", r.show.verdict)
    assert.are.equal("Drop", one(r, "RST Noise Control Verdict"))
    assert.are.equal("Drop DNS/Public DNS/Google", one(r, "RST Noise Control Reason"))
    assert.are.equal("DNS/Public DNS/Google", one(r, "RST Noise Control Category"))
    assert.is_nil(r.changes.status)
    assert.is_nil(r.changes.score)
  end)

  it("sets the status Whitelisted when whitelist_on_drop is on", function()
    local r = run("IP Address", "8.8.8.8", "ip_drop.json", { whitelist_on_drop = true })
    assert.are.equal("Whitelisted", r.changes.status)
  end)

  it("accepts whitelist_on_drop given as the text \"true\"", function()
    local r = run("IP Address", "8.8.8.8", "ip_drop.json", { whitelist_on_drop = "true" })
    assert.are.equal("Whitelisted", r.changes.status)
  end)

  it("does not lower the score on Drop", function()
    local r = run("IP Address", "8.8.8.8", "ip_drop.json", { score_decrease_on_change = 3 })
    assert.is_nil(r.changes.score)
  end)

  it("URL", function()
    local r = run("URL", "https://benign-updates.com/kb/update.msu", "url_drop.json")
    assert.are.equal("ok", r.status)
    assert.are.equal("Drop", one(r, "RST Noise Control Verdict"))
    assert.are.equal("Software/Updates/Microsoft", one(r, "RST Noise Control Category"))
  end)

  it("MD5: the category loses RST's trailing '/'", function()
    local r = run("MD5", "d41d8cd98f00b204e9800998ecf8427e", "md5_drop.json")
    assert.are.equal("Drop", one(r, "RST Noise Control Verdict"))
    assert.are.equal("Ubuntu Server 26.04 LTS/pam_sepermit.so",
                     one(r, "RST Noise Control Category"))
  end)

  it("SHA-256", function()
    local r = run("SHA-256", "e4ab4e3b1493d5a997b4e51cdefbaa10570ef3ea9432bd72e7b6a89654ceb7f6",
                  "sha256_drop.json", { whitelist_on_drop = true })
    assert.are.equal("Drop", one(r, "RST Noise Control Verdict"))
    assert.are.equal("Windows 11/System32/powershell.exe", one(r, "RST Noise Control Category"))
    assert.are.equal("Whitelisted", r.changes.status)
  end)
end)

describe("rst-noise-control verdict Change Score", function()
  it("IP Address: writes the verdict and leaves the score alone by default", function()
    local r = run("IP Address", "198.51.100.7", "ip_change.json")
    assert.are.equal("ok", r.status)
    assert.are.equal("Change Score", one(r, "RST Noise Control Verdict"))
    assert.are.equal("Cloud/Hosting/DigitalOcean", one(r, "RST Noise Control Category"))
    assert.is_nil(r.changes.score)
  end)

  it("lowers the object's score by score_decrease_on_change", function()
    local r = run("IP Address", "198.51.100.7", "ip_change.json",
                  { score_decrease_on_change = 3 }, 5)
    assert.are.equal(2, r.changes.score)
  end)

  it("never lowers the score below 0", function()
    local r = run("IP Address", "198.51.100.7", "ip_change.json",
                  { score_decrease_on_change = "5" }, 2)
    assert.are.equal(0, r.changes.score)
  end)

  it("does not whitelist on Change Score", function()
    local r = run("IP Address", "198.51.100.7", "ip_change.json", { whitelist_on_drop = true })
    assert.is_nil(r.changes.status)
  end)

  it("FQDN", function()
    local r = run("FQDN", "cdn-noisy.net", "fqdn_change.json", { score_decrease_on_change = 10 }, 7)
    assert.are.equal("Change Score", one(r, "RST Noise Control Verdict"))
    assert.are.equal("Dynamic DNS/Providers/No-IP", one(r, "RST Noise Control Category"))
    assert.are.equal(0, r.changes.score)
  end)

  it("SHA-1", function()
    local r = run("SHA-1", "c09bb890b096f7306f688cc6d1dad34e7e52a223", "sha1_change.json")
    assert.are.equal("Change Score", one(r, "RST Noise Control Verdict"))
    assert.are.equal("Software/Installers/7-Zip", one(r, "RST Noise Control Category"))
  end)
end)

describe("rst-noise-control value not listed", function()
  local r = run("FQDN", "example-unknown.net", "not_listed.json",
                { whitelist_on_drop = true, score_decrease_on_change = 5 })

  it("is a success that shows found = false and the verdict Not Listed", function()
    assert.are.equal("ok", r.status)
    assert.is_false(r.show.found)
    assert.are.equal("Not Listed", r.show.verdict)
    assert.is_false(r.show.benign)
  end)

  it("records no change", function()
    assert_no_changes(r)
  end)
end)

describe("rst-noise-control failures", function()
  local function failed(fixture, pattern, config, secrets)
    local r = run("IP Address", "8.8.8.8", fixture, config, 5, secrets)
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

  it("a 200 body that is not a verdict", function()
    failed("unexpected.json", "no 'benign' field")
  end)

  it("no API key configured", function()
    failed("ip_drop.json", "API key not configured", nil, {})
  end)

  it("score_decrease_on_change outside 0..10", function()
    failed("ip_drop.json", "config score_decrease_on_change", { score_decrease_on_change = 11 })
  end)
end)

describe("rst-noise-control secrets", function()
  it("never puts the API key in what it shows or writes", function()
    local r = run("IP Address", "8.8.8.8", "ip_drop.json", { whitelist_on_drop = true })
    assert.are.equal("ok", r.status)
    assert.is_false(contains(r.show, KEY))
    assert.is_false(contains(r.changes, KEY))
  end)
end)
