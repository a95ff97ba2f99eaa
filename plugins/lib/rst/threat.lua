-- rst/threat.lua: RST's threat codenames (lower-case snake case with a type suffix, spec
-- section 2.5) as ThreatQ objects: which object type a code names and a readable name for it,
-- following the mapping of RST's own OpenCTI feed connector (spec section 8.4): suffix
-- removed, '_' to space, APT-like codes (letters then digits: ta505, apt28) upper-cased,
-- otherwise Title Case, " Ransomware" and " RAT" kept. Also MITRE technique ids and CVE ids.
local memo = require "rst.memo"

local M = {}

-- Suffix -> { object type, kept name suffix }. "actor" is resolved by the caller's choice
-- (adversary, as ThreatQ's own RST integration returns, or intrusion_set, as OpenCTI's).
local SUFFIXES = {
  group = { "actor" },
  actor = { "actor" },
  campaign = { "campaign" },
  tool = { "tool" },
  technique = { "attack_pattern" },
  vuln = { "vulnerability" },
  ransomware = { "malware", "Ransomware" },
  raas = { "malware", "Ransomware" },
  backdoor = { "malware" },
  rat = { "malware", "RAT" },
  exploit = { "malware" },
  miner = { "malware" },
  maas = { "malware" },
  stealer = { "malware" },
  botnet = { "malware" },
}

-- One word in display case: APT-like codes upper-case, others capitalised.
local function word_case(w)
  if w:match("^%a+%d+%a*$") or w:match("^%d+%a+$") then
    return w:upper()
  end
  return w:sub(1, 1):upper() .. w:sub(2)
end

-- "educated_manticore" -> "Educated Manticore"
local function pretty(base)
  local words = {}
  for w in base:gmatch("[^_%s]+") do
    words[#words + 1] = word_case(w)
  end
  return table.concat(words, " ")
end

-- object type, display name, kind (the suffix or "malware") of a threat code; nil for an
-- empty code. actor_type is the object type for _group/_actor codes.
local function classify(code, actor_type)
  if type(code) ~= "string" then
    return nil
  end
  code = code:lower():gsub("^%s+", ""):gsub("%s+$", "")
  if code == "" then
    return nil
  end
  local base, suffix = code:match("^(.-)_(%a+)$")
  local def = suffix and SUFFIXES[suffix]
  if not def or base == "" then
    return "malware", pretty(code), "malware"
  end
  local otype = def[1] == "actor" and actor_type or def[1]
  local name = pretty(base)
  if def[2] then
    name = name .. " " .. def[2]
  end
  return otype, name, suffix
end

-- Memos of the pure functions below (rst.memo), keyed by their input.
local classified = {} -- actor_type -> memo of code -> { object type, name, kind } or false

-- The memoised classify (non-string codes are not memoised).
function M.classify(code, actor_type)
  if type(code) ~= "string" then
    return nil
  end
  local m = classified[actor_type or false]
  if m == nil then
    m = memo.new()
    classified[actor_type or false] = m
  end
  local r = m.v[code]
  if r == nil then
    local otype, name, kind = classify(code, actor_type)
    r = memo.put(m, code, otype and { otype, name, kind } or false)
  end
  if r then
    return r[1], r[2], r[3]
  end
  return nil
end

-- "t1059.001" -> "T1059.001"; nil when not a MITRE ATT&CK technique id.
local techniques = memo.new()

function M.technique_id(s)
  if type(s) ~= "string" then
    return nil
  end
  local r = techniques.v[s]
  if r == nil then
    local id = s:upper():gsub("%s", "")
    r = memo.put(techniques, s,
                 (id:match("^T%d%d%d%d$") or id:match("^T%d%d%d%d%.%d%d%d$")) and id or false)
  end
  return r or nil
end

-- "cve-2021-44228" -> "CVE-2021-44228"; nil when not a CVE id.
local cves = memo.new()

function M.cve_id(s)
  if type(s) ~= "string" then
    return nil
  end
  local r = cves.v[s]
  if r == nil then
    local id = s:upper():gsub("%s", "")
    r = memo.put(cves, s, id:match("^CVE%-%d%d%d%d%-%d%d%d%d+$") and id or false)
  end
  return r or nil
end

return M
