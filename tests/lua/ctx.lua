-- ctx.lua: entries exercising obj, ctx (config, secrets, change set), json, log and http in
-- replay mode, for tests/unit/test_lua_ctx.c. The secret "api_key" must never leak.
local M = {}

function M.changeset(obj, ctx)
  ctx:attribute("Country", "NL")
  ctx:attribute("ASN", 64500)              -- numbers become text
  ctx:tag("rst-enriched")
  ctx:score(7)
  ctx:status("review")                     -- case-insensitive, stored canonical
  ctx:link("malware", "Emotet", {link_type = "indicates", description = "seen together"})
  ctx:indicator("FQDN", "evil.example", {["Resolved IP"] = obj.value, Note = {"a", "b"}})
  ctx:show{summary = "enriched " .. obj.value, rows = {{k = "score", v = 7}}}
end

function M.bad_status(obj, ctx) ctx:status("Deleted") end
function M.bad_score(obj, ctx) ctx:score(11) end
function M.bad_link_type(obj, ctx) ctx:link("no-such-type", "x") end

function M.read_obj(obj, ctx)
  assert(obj.value == "45.83.122.166", "value")
  assert(obj.type == "indicator" and obj.indicator_type == "IP Address", "types")
  assert(obj.status == "Active" and obj.score == 4, "status/score")
  assert(#obj.attributes == 2 and obj.attributes[2].name == "Country", "attributes")
  assert(obj.attributes[2].source == "RST Cloud", "attribute source")
  assert(#obj.tags == 1 and obj.tags[1] == "c2", "tags")
  local n = 0
  for _, a in ipairs(obj.attributes) do n = n + 1 end
  for k, v in pairs(obj) do n = n + 1 end
  assert(n >= 10, "iteration of a read-only view")
  assert(json.decode(json.encode(obj)).value == obj.value, "a view encodes")
end

function M.write_obj(obj, ctx) obj.value = "1.1.1.1" end
function M.write_obj_attr(obj, ctx) obj.attributes[1].value = "x" end

function M.config(obj, ctx)
  assert(ctx.config.base_url == "http://127.0.0.1", "base_url")
  assert(math.type(ctx.config.threshold) == "integer" and ctx.config.threshold == 5, "threshold")
  assert(ctx.config.strict == true, "a boolean field is a boolean")
  assert(math.type(ctx.config.ratio) == "float" and ctx.config.ratio == 0.25, "number")
  assert(tonumber(ctx.config.threshold) == 5, "tonumber still works on a number")
  local tags = ctx.config.tags
  assert(type(tags) == "table" and #tags == 2 and tags[1] == "a" and tags[2] == "b c", "list")
  assert(not pcall(function() tags[3] = "x" end), "a list is read-only")
  assert(ctx.config.api_key == nil, "a secret field is in ctx.config")
  assert(ctx.secret("missing") == nil, "missing secret")
end

function M.write_config(obj, ctx) ctx.config.base_url = "http://evil" end

-- every way a script might try to show a secret
function M.secret_log(obj, ctx)
  local key = ctx.secret("api_key")
  log.warn("key is %s", key)
  log.warn(key)
  print("print:", key)
  assert(tostring(key) == "********")
  assert(string.format("%s", key) == "********")
end

function M.secret_concat(obj, ctx)
  local s = "Bearer " .. ctx.secret("api_key")
  assert(s == "Bearer ********", s)
  ctx:attribute("Auth", s)
  ctx:tag(ctx.secret("api_key") .. "!")
end

function M.secret_attribute(obj, ctx) ctx:attribute("Key", ctx.secret("api_key")) end
function M.secret_show(obj, ctx) ctx:show{key = ctx.secret("api_key")} end
function M.secret_json(obj, ctx) return json.encode({k = ctx.secret("api_key")}) end
function M.secret_return(obj, ctx) return nil, ctx.secret("api_key") end
function M.secret_error(obj, ctx) error(ctx.secret("api_key")) end
function M.secret_index(obj, ctx) return ctx.secret("api_key").value end

function M.json_roundtrip(obj, ctx)
  local v = json.decode('{"a":[1,2,{"b":null}],"s":"x","f":1.5,"t":true,"e":{}}')
  assert(v.a[3].b == json.null, "null")
  assert(v.a[2] == 2 and math.type(v.a[2]) == "integer", "integers")
  assert(v.f == 1.5 and v.t == true and v.s == "x", "scalars")
  local back = json.decode(json.encode(v))
  assert(back.a[1] == 1 and back.a[3].b == json.null, "roundtrip")
  assert(json.encode({1, 2, 3}) == "[1,2,3]", "array")
  assert(json.encode({}) == "{}", "empty table")
  local bad, err = json.decode("{oops")
  assert(bad == nil and err:find("invalid JSON"), "decode error")
end

function M.json_cycle(obj, ctx)
  local t = {}
  t.self = t
  return json.encode(t)
end

function M.json_function(obj, ctx) return json.encode({f = print}) end

function M.http_replay(obj, ctx)
  local resp, err = http.get("https://api.example.test/v1/ioc",
                             {query = {value = obj.value, type = "ip"},
                              headers = {["X-Api-Key"] = ctx.secret("api_key")}})
  assert(resp, err and err.message)
  assert(resp.status == 200, "status")
  assert(resp.headers["content-type"] == "application/json", "header names are lower-case")
  local data = resp:json()
  ctx:score(data.score)
  local r2, e2 = http.post("https://api.example.test/v1/missing", {json = {value = obj.value}})
  assert(r2 == nil and e2.kind == "http" and e2.status == 404, "404 is an http error")
  local r3, e3 = http.get("https://api.example.test/v1/slow")
  assert(r3 == nil and e3.kind == "timeout", "recorded timeout")
end

function M.http_unrecorded(obj, ctx)
  return http.get("https://api.example.test/v1/other", {query = {q = "a b&c"}})
end

-- obj's lists are built on first use: each way of reaching them shows the same content.
function M.obj_lists_lazy(obj, ctx)
  local keys = {}
  for k in pairs(obj) do keys[k] = true end
  assert(keys.attributes and keys.sources and keys.tags, "pairs shows the lists")
  assert(next(obj) ~= nil, "next sees the fields")
  assert(obj.sources[1] == "RST Cloud", "sources")
  local back = json.decode(json.encode(obj))
  assert(#back.attributes == 2 and back.tags[1] == "c2", "an encoded obj has its lists")
end

function M.obj_lists_encode_first(obj, ctx)
  local back = json.decode(json.encode(obj)) -- the lists are built by the encoder
  assert(#back.attributes == 2 and back.sources[1] == "RST Cloud", "encoded lists")
  assert(obj.tags[1] == "c2" and #obj.attributes == 2, "lists after encoding")
end

-- Text that contains a short secret ("k", below the redaction floor) is stored unchanged.
function M.short_secret_text(obj, ctx)
  ctx:attribute("Kind", "attack_pattern")
  ctx:tag("kill chain")
  return nil, "lookup of attack_pattern failed"
end

-- ctx:attributes(names, values): the pairs in order, numbers as text, checked like
-- ctx:attribute.
function M.attributes_batch(obj, ctx)
  ctx:attribute("First", "1")
  ctx:attributes({ "Country", "ASN", "Country" }, { "NL", 64500, "DE" })
end
function M.attributes_uneven(obj, ctx) ctx:attributes({ "A", "B" }, { "1" }) end
function M.attributes_secret(obj, ctx) ctx:attributes({ "Key" }, { ctx.secret("api_key") }) end

-- ctx.outcome_only tells the entry whether the host reads more of its show than found.
function M.outcome_flag(obj, ctx)
  ctx:show{ found = ctx.outcome_only, message = type(ctx.outcome_only) }
end

-- obj given without its lists (obj_lists_later): they are read from the library when used.
function M.obj_lists_from_library(obj, ctx)
  assert(obj.value == "45.83.122.166" and obj.score == 0, "scalar fields")
  assert(#obj.attributes == 2 and obj.attributes[1].name == "Confidence", "attributes")
  assert(obj.attributes[2].value == "DE" and obj.attributes[2].source == "RST Cloud", "attribute")
  assert(obj.sources[1] == "RST Cloud" and obj.tags[1] == "c2", "sources and tags")
  local back = json.decode(json.encode(obj))
  assert(#back.attributes == 2, "an encoded obj has its lists")
end

function M.obj_value_only(obj, ctx) ctx:attribute("Seen", obj.value) end

-- The outcome of a show: found and message, everything else dropped in outcome_only mode.
function M.show_outcome(obj, ctx)
  ctx:show{found = false, message = "not here", rows = {1, 2, 3}, f = function() end}
end

function M.json_decode_cases(obj, ctx)
  local v = json.decode(' \t{"u":"caf\\u00e9 \\ud83d\\ude00","e":"a\\"b\\\\c\\/d\\n",' ..
                        '"n":-12,"x":1e3,"big":12345678901234567890,"d":{"k":1,"k":2},' ..
                        '"l":[true,false,null,[]]} trailing')
  assert(v.u == "caf\u{e9} \u{1F600}", "unicode escapes: " .. tostring(v.u))
  assert(v.e == 'a"b\\c/d\n', "escapes")
  assert(v.n == -12 and math.type(v.n) == "integer", "negative integer")
  assert(v.x == 1000 and math.type(v.x) == "integer", "integral exponent")
  assert(math.type(v.big) == "float", "a number past 2^53 stays a float")
  assert(v.d.k == 2, "the last of two equal keys wins")
  assert(v.l[1] == true and v.l[2] == false and v.l[3] == json.null and #v.l == 4, "list")
  assert(next(v.l[4]) == nil, "empty list")
  local bad, err = json.decode('{"a":1,}')
  assert(bad == nil and err == "json: invalid JSON at byte 8", "trailing comma: " .. tostring(err))
  bad, err = json.decode('"\\ud800"')
  assert(bad == nil and err:find("invalid JSON"), "lone surrogate")
  bad, err = json.decode('')
  assert(bad == nil and err == "json: invalid JSON at byte 1", "empty text")
  local deep, why = json.decode(string.rep("[", 300) .. string.rep("]", 300))
  assert(deep == nil and why == "json: nesting deeper than 200 at byte 202", "nesting: " .. tostring(why))
  -- containers of more members than the decoder gathers at once (64): order, every member,
  -- and the last of two equal names across that boundary
  local items, members = {}, {}
  for i = 1, 1000 do
    items[i] = tostring(i * 3)
    members[i] = string.format('"m%d":[%d,{"v":%d}]', i, i, -i)
  end
  local arr = json.decode("[" .. table.concat(items, ",") .. "]")
  assert(#arr == 1000, "1000 elements: " .. #arr)
  for i = 1, 1000 do
    assert(arr[i] == i * 3, "element " .. i)
  end
  local obj = json.decode('{"k":"first",' .. table.concat(members, ",") .. ',"k":"last"}')
  local n = 0
  for _ in pairs(obj) do
    n = n + 1
  end
  assert(n == 1001, "1001 members: " .. n)
  assert(obj.m1[1] == 1 and obj.m500[2].v == -500 and obj.m1000[1] == 1000, "nested members")
  assert(obj.k == "last", "the last of two equal names wins across chunks: " .. tostring(obj.k))
end

-- What a server might echo back of the API key (the test's secret "S3cr3t-Value-XYZ"): as it
-- is, upper-cased, reversed, cut in two halves of 8 bytes.
local ECHOES = {"S3cr3t-Value-XYZ", "S3CR3T-VALUE-XYZ", string.reverse("S3cr3t-Value-XYZ"),
                "S3cr3t-V", "alue-XYZ", "s3cr3t-value-xyz-tail"}

function M.echo_show(obj, ctx)
  local show = {list = {}, nested = {deep = {}}}
  for i, e in ipairs(ECHOES) do
    show.list[i] = "got " .. e
    show.nested.deep["k" .. i] = e
  end
  show["key:" .. ECHOES[2]] = true
  ctx:show(show)
end

function M.echo_return(obj, ctx)
  return {echo = ECHOES[3], parts = ECHOES[4] .. " " .. ECHOES[5]}
end

function M.echo_log(obj, ctx)
  for _, e in ipairs(ECHOES) do
    log.warn("echo %s", e)
    print("print", e)
  end
end

function M.echo_attribute(obj, ctx)
  for i, e in ipairs(ECHOES) do
    ctx:attribute("Echo " .. i, "v=" .. e)
    ctx:tag("t" .. e)
  end
  ctx:attribute(ECHOES[2], "named after the key")
end

-- A batch entry (entry(items, ctx)): each item's changes go through ctx:item(i); echoes of the
-- secret are masked there as in ctx, in values and in a refused change's reason.
function M.batch_echo(items, ctx)
  assert(#items == 3 and items[2].value == "45.83.122.166" and items[3].attributes[1].name)
  for i in ipairs(items) do
    local c = ctx:item(i)
    c:attribute("Echo", "v=" .. ECHOES[2])
    c:tag("t" .. ECHOES[3])
    if i == 2 then
      local ok, err = c:status("x" .. ECHOES[1])
      assert(ok == nil and err:find("is not a status"), tostring(err))
    end
  end
end

-- A batch item's changes are charged to the run like ctx's: past the budget the run is killed,
-- not just the item failed.
function M.batch_memory(items, ctx)
  local c, big = ctx:item(1), string.rep("x", 60000)
  for k = 1, 1000 do
    c:attribute("A" .. k, big)
  end
  ctx:item(2):attribute("never", "reached")
end

function M.echo_error(obj, ctx) error("server said " .. ECHOES[2] .. " / " .. ECHOES[3]) end
function M.echo_reason(obj, ctx) return nil, "bad key " .. ECHOES[4] .. "+" .. ECHOES[5] end
-- Ordinary text that shares only short runs (under 8 bytes) with the key stays as it is.
function M.echo_near_miss(obj, ctx)
  ctx:attribute("Note", "S3cr3t- Value XYZ")
  return nil, "value-x and S3cr3t-"
end

-- Text that tries to forge a log line or send terminal escapes.
function M.log_injection(obj, ctx)
  log.warn('ok"\nlevel=error part=auth msg="admin logged in')
  print("clear\27[2J screen")
end

-- Names with control characters are refused where they are recorded; values may hold newlines.
function M.bad_tag_name(obj, ctx) ctx:tag("ok\nlevel=error forged") end
function M.bad_attribute_name(obj, ctx) ctx:attribute("Country\27[31m", "DE") end
function M.control_link_type(obj, ctx) ctx:link("malware", "Emotet", {link_type = "uses\r"}) end
function M.bad_indicator_attribute(obj, ctx) ctx:indicator("FQDN", "a.example", {["x\ty"] = 1}) end
function M.newline_in_value(obj, ctx) ctx:attribute("Description", "line one\nline two") end

return M
