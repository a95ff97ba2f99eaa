-- Specs of example-lookup, run by `tqhost plugin test tests/data/plugins/example-lookup`.
local T = require "tqhost.test"

local function ip(value)
  return { type = "indicator", indicator_type = "IP Address", value = value, score = 0,
           status = "Active", attributes = {} }
end

describe("example-lookup lookup", function()
  it("records score, tags, links and related indicators of a hit", function()
    local r = T.run{ entry = "lookup", object = ip("45.83.122.166"),
                     secrets = { api_key = "test-key" }, replay = "spec/fixtures/ip_hit.json" }
    assert.are.equal("ok", r.status)
    assert.are.same({ { name = "Example Score", value = "7" } }, r.changes.attributes)
    assert.are.same({ "c2", "scanner" }, r.changes.tags)
    assert.are.equal("malware", r.changes.links[1].object_type)
    assert.are.equal("indicates", r.changes.links[1].link_type)
    assert.are.equal("evil.example.com", r.changes.indicators[1].value)
    assert.are.equal(7, r.changes.score)
    assert.are.equal("45.83.122.166", r.show.value)
  end)

  it("applies manifest defaults to config the spec leaves out", function()
    local r = T.run{ entry = "lookup", object = ip("45.83.122.166"), config = { update_score = false },
                     secrets = { api_key = "spec-key-123" }, replay = "spec/fixtures/ip_hit.json" }
    assert.are.equal("ok", r.status)
    assert.is_nil(r.changes.score)
  end)

  it("fails with a reason when the API does not know the value", function()
    local r = T.run{ entry = "lookup", object = ip("10.1.1.1"), secrets = { api_key = "spec-key-123" },
                     replay = "spec/fixtures/not_found.json" }
    assert.are.equal("failed", r.status)
    assert.are.equal("not found", r.message)
    assert.are.same({}, r.changes.attributes)
  end)

  it("reports an error when the request is not recorded", function()
    local r = T.run{ entry = "lookup", object = ip("1.1.1.1"), secrets = { api_key = "spec-key-123" },
                     replay = "spec/fixtures/ip_hit.json" }
    assert.are.equal("error", r.status)
    assert.truthy(r.message:find("no recorded response", 1, true))
  end)
end)
