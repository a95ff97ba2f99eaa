-- operation.lua: the RST Whois API operation. The work lives in plugins/lib/rst/whois.lua,
-- which the bulk action runs too; this file only names the entries the manifest lists.
local rst_whois = require "rst.whois"

return {
  -- whois(obj, ctx): GET /whois[/full|/raw]/{registered domain}; see rst.whois.whois.
  whois = rst_whois.whois,
}
