#!/usr/bin/env bash
# Regenerates the fixed certificates and signatures of this folder with the openssl command
# line (OpenSSL 3.0, Debian 12). Run once; the outputs are committed. See README.md.
set -euo pipefail
cd "$(dirname "$0")"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# The CA: P-256, self-signed, 20 years.
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$tmp/ca.key"
openssl req -x509 -new -key "$tmp/ca.key" -sha256 -days 7300 \
    -subj "/O=kube-dmvpn/CN=kube-dmvpn test CA" \
    -addext "basicConstraints=critical,CA:TRUE" \
    -addext "keyUsage=critical,keyCertSign,cRLSign" -out ca.pem

issue() { # name algorithm-args ip dns
    local name=$1 ip=$3 dns=$4
    # shellcheck disable=SC2086
    openssl genpkey $2 -out "$name.key"
    openssl req -new -key "$name.key" -subj "/O=kube-dmvpn/CN=$dns" -out "$tmp/$name.csr"
    printf 'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nsubjectAltName=IP:%s,DNS:%s\n' \
        "$ip" "$dns" > "$tmp/$name.ext"
    openssl x509 -req -in "$tmp/$name.csr" -CA ca.pem -CAkey "$tmp/ca.key" -CAcreateserial \
        -CAserial "$tmp/ca.srl" -sha256 -days 7300 -extfile "$tmp/$name.ext" -out "$name.pem"
}
issue spoke1-p256 "-algorithm EC -pkeyopt ec_paramgen_curve:P-256" 198.18.0.1 spoke1.dmvpn.test
issue spoke2-ed25519 "-algorithm ED25519" 198.18.0.2 spoke2.dmvpn.test

# The message both spokes sign, standing for RFC 7296 section 2.15 signed octets.
printf 'kube-dmvpn RFC 7427 test: InitiatorSignedOctets stand-in\n' > signed-octets.bin

# RFC 7427 section 3 AUTH data: length octet, AlgorithmIdentifier (RFC 7427 Appendix A.3
# ecdsa-with-SHA256; RFC 8420 Appendix A.1 id-Ed25519), signature.
openssl dgst -sha256 -sign spoke1-p256.key -out "$tmp/p256.sig" signed-octets.bin
{ printf '\x0c\x30\x0a\x06\x08\x2a\x86\x48\xce\x3d\x04\x03\x02'; cat "$tmp/p256.sig"; } > auth-spoke1-p256.bin
openssl pkeyutl -sign -rawin -inkey spoke2-ed25519.key -in signed-octets.bin -out "$tmp/ed.sig"
{ printf '\x07\x30\x05\x06\x03\x2b\x65\x70'; cat "$tmp/ed.sig"; } > auth-spoke2-ed25519.bin
