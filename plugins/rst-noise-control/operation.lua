-- operation.lua: the RST Noise Control operation. The work lives in
-- plugins/lib/rst/noise.lua, which the bulk action runs too; this file only names the
-- entries the manifest lists.
local rst_noise = require "rst.noise"

return {
  -- check(obj, ctx): GET /benign/lookup?value=obj.value; see rst.noise.check.
  check = rst_noise.check,
}
