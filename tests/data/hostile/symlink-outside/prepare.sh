#!/usr/bin/env bash
# prepare.sh COPY WORK: makes the plugin's script a symlink to a file outside its folder.
set -eu
mkdir -p "$2/outside"
cat >"$2/outside/evil.lua" <<'LUA'
local M = {}
function M.lookup() return nil, "BREACH: ran a script outside the plugin folder" end
return M
LUA
rm -f "$1/operation.lua"
ln -s "$2/outside/evil.lua" "$1/operation.lua"
