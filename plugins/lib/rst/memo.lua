-- rst/memo.lua: bounded memos for the pure functions a bulk run calls with the same few hundred
-- inputs over and over (threat codes, TTP and CVE ids, dates). A memo is emptied when it
-- reaches MAX entries, so that it stays small whatever the input. Values are never nil (store
-- false for "no result").
local M = {}

M.MAX = 4096

function M.new()
  return { n = 0, v = {} }
end

-- Stores v under k and returns v.
function M.put(m, k, v)
  if m.n >= M.MAX then
    m.n, m.v = 0, {}
  end
  m.n = m.n + 1
  m.v[k] = v
  return v
end

return M
