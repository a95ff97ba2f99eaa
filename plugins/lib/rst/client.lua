-- rst/client.lua: the one way the RST Cloud plugins call the RST REST API. It builds the URL
-- from ctx.config.base_url, sends the API key (ctx.secret "api_key", which only the http
-- module can read) in X-Api-Key, decodes the JSON answer and turns every transport, HTTP or
-- JSON failure into nil, "<clear reason>" for the caller to return as the object's failure.
-- Retries, Retry-After, rate limiting and caching are the host's (manifest `network`), so an
-- error seen here is final.
local parse = require "rst.parse"

local M = {}

M.DEFAULT_BASE_URL = "https://api.rstcloud.net/v1"

local MAX_DETAIL = 200 -- characters of an API error message quoted in a reason

local last_raw, last_base -- the last configured value and its checked form (runs repeat it)

-- The configured base URL without trailing '/', or nil, reason when it is not http(s).
function M.base_url(ctx)
  local raw = ctx.config.base_url
  if raw ~= nil and raw == last_raw then
    return last_base
  end
  local base = parse.text(raw) or M.DEFAULT_BASE_URL
  base = base:gsub("/+$", "")
  if not base:match("^[Hh][Tt][Tt][Pp][Ss]?://[^/]") then
    return nil, string.format("config base_url: '%s' is not an http(s) URL", base)
  end
  if type(raw) == "string" then
    last_raw, last_base = raw, base
  end
  return base
end

-- The message of an RST error body ({"message": ...} or {"error": ...}), cut short, or nil.
local function body_detail(body)
  if type(body) ~= "string" or body == "" then
    return nil
  end
  local ok, data = pcall(json.decode, body)
  if not ok or type(data) ~= "table" then
    return nil
  end
  local msg = parse.text(data.message) or parse.text(data.error)
  if msg and #msg > MAX_DETAIL then
    msg = msg:sub(1, MAX_DETAIL) .. "..."
  end
  return msg
end

-- The reason for an http error (err.kind, err.status, err.message, err.body).
function M.reason(err)
  if type(err) ~= "table" then
    return "RST API request failed: " .. tostring(err)
  end
  local kind, status, msg = err.kind, parse.int(err.status), tostring(err.message or err.kind)
  if kind == "http" and status == 429 then
    return "RST API rate limit (429) after retries"
  end
  if kind == "http" and (status == 401 or status == 403) then
    return string.format("API key rejected (%d)", status)
  end
  if kind == "http" then
    local detail = body_detail(err.body)
    return string.format("RST API error: HTTP %s%s", status or "?",
                         detail and (" (" .. detail .. ")") or "")
  end
  if kind == "timeout" or kind == "refused" or kind == "tls" then
    return "RST API unreachable: " .. msg
  end
  if kind == "blocked" then
    return "RST API unreachable: the host is not allowed by the plugin's network settings ("
             .. msg .. ")"
  end
  if kind == "too_large" then
    return "RST API response too large: " .. msg
  end
  return "RST API request failed: " .. msg
end

-- GET base_url .. path (query: a table the http module encodes) and decode the JSON object.
-- Returns the decoded table, or nil, reason.
function M.get(ctx, path, query)
  local base, berr = M.base_url(ctx)
  if not base then
    return nil, berr
  end
  local key = ctx.secret("api_key")
  if key == nil then
    return nil, "API key not configured: set api_key in the plugin configuration"
  end
  local resp, err = http.get(base .. path, {
    query = query,
    headers = { ["X-Api-Key"] = key, ["Accept"] = "application/json" },
  })
  if not resp then
    return nil, M.reason(err)
  end
  local data, jerr = resp:json()
  if type(data) ~= "table" then
    return nil, "RST API returned invalid JSON" .. (jerr and (" (" .. tostring(jerr) .. ")") or "")
  end
  return data
end

-- A path segment with every byte outside [A-Za-z0-9._~-] percent-encoded.
function M.segment(s)
  return (tostring(s):gsub("[^%w%.%-_~]", function(c)
    return string.format("%%%02X", c:byte())
  end))
end

return M
