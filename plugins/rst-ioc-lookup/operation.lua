-- operation.lua: the RST IoC Lookup operation. The work lives in plugins/lib/rst/ioc.lua,
-- which the bulk action runs too; this file only names the entries the manifest lists.
local rst_ioc = require "rst.ioc"

return {
  -- lookup(obj, ctx): GET /ioc?value=obj.value; see rst.ioc.lookup for what it records.
  lookup = rst_ioc.lookup,
}
