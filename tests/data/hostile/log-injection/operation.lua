-- Log text and a failure reason with newlines, carriage returns and terminal escapes: each log
-- record must stay one line, and no escape byte may reach the output.
local M = {}

function M.lookup()
  log.info("one\nlevel=error part=core msg=\"forged by a plugin\"")
  log.warn("\r\27[2K\27[31mred\27[0m\27]0;title\7")
  print("two\nlevel=error part=core msg=\"forged by print\"")
  return nil, "contained: logged\nlevel=error part=core msg=\"forged reason\"\27[31m"
end

return M
