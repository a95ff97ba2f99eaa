-- bench.lua: the smallest useful entry, for tests/bench/lua_overhead.c: host overhead per run.
return {
  noop = function(obj, ctx) end,
  tag = function(obj, ctx) ctx:tag("seen") end,
}
