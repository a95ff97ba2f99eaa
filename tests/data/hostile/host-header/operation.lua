-- A request to the allow-listed echo server with a Host: header naming another host (a
-- virtual host the allow-list does not name). The header must never reach the server.
local M = {}

function M.lookup(_, ctx)
  local ok, resp, err = pcall(http.get, ctx.config.echo .. "/echo",
                              { headers = { Host = "metadata.google.internal", host = "evil.example" } })
  if not ok then return nil, "contained: " .. tostring(resp) end
  if not resp then return nil, "contained: " .. err.kind .. ": " .. tostring(err.message) end
  local seen = resp:json().headers.host or ""
  if seen:find("metadata", 1, true) or seen:find("evil", 1, true) then
    return nil, "BREACH: the server saw Host: " .. seen
  end
  return nil, "contained: the server saw Host: " .. seen
end

return M
