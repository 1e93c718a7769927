#!/usr/bin/env bash
# zookeeper: make a self-signed TLS certificate for local development.
# Usage: deploy/dev-cert.sh TLS_DIR  -> TLS_DIR/cert.pem, TLS_DIR/key.pem (kept if still valid).
set -euo pipefail

if [[ $# -ne 1 || $1 == -* ]]; then
    echo "usage: $0 TLS_DIR" >&2
    exit 2
fi

dir=$1
cert=$dir/cert.pem
key=$dir/key.pem

# Kept when valid for another day (a stack started now does not expire under
# its user) and still the pair of the key beside it (a run interrupted between
# the two moves below leaves a mismatch).
usable() {
    local cert_pub
    [[ -s $cert && -s $key ]] || return 1
    # One call for both: the public key, then the -checkend verdict line.
    cert_pub=$(openssl x509 -in "$cert" -noout -pubkey -checkend 86400 2>/dev/null) || return 1
    [[ ${cert_pub%%$'\n'Certificate*} == "$(openssl pkey -in "$key" -pubout 2>/dev/null)" ]]
}
if usable; then
    echo "$cert"
    exit 0
fi

mkdir -p "$dir"
tmp=$(mktemp -d "$dir/.new.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

# P-256: small and fast handshakes, accepted by every client of this decade.
# The certificate is its own CA (basicConstraints CA:TRUE from openssl's
# defaults), so clients trust it with --cacert / cafile=cert.pem.
(
    umask 077
    openssl req -x509 -new -nodes -sha256 -days 825 \
        -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 \
        -keyout "$tmp/key.pem" -out "$tmp/cert.pem" \
        -subj "/O=zookeeper development/CN=localhost" \
        -addext "subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1" \
        -addext "extendedKeyUsage=serverAuth" \
        -addext "keyUsage=critical,digitalSignature,keyCertSign" \
        2>"$tmp/openssl.log" || { cat "$tmp/openssl.log" >&2; exit 1; }
)
chmod 0644 "$tmp/cert.pem"
mv -f "$tmp/key.pem" "$key"
mv -f "$tmp/cert.pem" "$cert"
echo "$cert"
