#!/usr/bin/env bash
# make_certs.sh: makes a throw-away test CA and a server certificate for 127.0.0.1/localhost
# signed by it, for rstsim's --tls-cert/--tls-key in tests. Nothing here is committed: every
# test run makes fresh keys in its own temporary directory.
# Usage: make_certs.sh OUTDIR   -> OUTDIR/ca.pem, OUTDIR/server.pem, OUTDIR/server.key
set -eu
OUT=${1:?usage: make_certs.sh OUTDIR}
mkdir -p "$OUT"
cd "$OUT"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
  -subj '/CN=rstsim test CA' -keyout ca.key -out ca.pem \
  -addext 'basicConstraints=critical,CA:TRUE' -addext 'keyUsage=critical,keyCertSign,cRLSign' \
  2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj '/CN=127.0.0.1' \
  -keyout server.key -out server.csr 2>/dev/null
printf '%s\n' 'basicConstraints=CA:FALSE' 'keyUsage=digitalSignature' \
  'extendedKeyUsage=serverAuth' 'subjectAltName=IP:127.0.0.1,DNS:localhost' >server.ext
openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 \
  -extfile server.ext -out server.pem 2>/dev/null
rm -f server.csr server.ext ca.srl
