# SPDX-License-Identifier: MIT
# Test PKI, made fresh by each TLS test in $1 with the openssl CLI:
#   ca1 (the trusted test CA), ca2 (an unrelated CA)
#   good:      ca1, DNS up.test, DNS *.wild.test, IP 198.18.3.2, URI spiffe://mesh.test/ns/default/sa/up
#   wrongca:   ca2, DNS up.test          wrongname: ca1, DNS other.test
#   expired:   ca1, DNS up.test, 2020    selfsigned: DNS up.test
#   evil:      ca1, URI spiffe://mesh.test.evil/ns/default/sa/up, DNS up.test
#   partial:   ca1, DNS s*.wild.test (a partial wildcard)   cnonly: ca1, CN up.test, no SAN
#   client:    ca1, CN client-1
make_certs() {
	local d=$1
	(
		cd "$d" || exit 1
		q() { "$@" >/dev/null 2>&1 || { echo "certs: $* failed" >&2; exit 1; }; }
		for ca in ca1 ca2; do
			q openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout $ca.key \
				-out $ca.pem -days 30 -subj "/CN=meshsplice test $ca"
		done
		leaf() { # name ca san [extra openssl x509 args]
			local name=$1 ca=$2 san=$3
			shift 3
			q openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout $name.key \
				-out $name.csr -subj "/CN=${CN:-$name}"
			if [ -n "$san" ]; then printf 'subjectAltName=%s\n' "$san" >$name.ext; else : >$name.ext; fi
			if [ "$ca" = self ]; then
				q openssl x509 -req -in $name.csr -signkey $name.key -out $name.pem -days 30 -extfile $name.ext
			else
				q openssl x509 -req -in $name.csr -CA $ca.pem -CAkey $ca.key -CAcreateserial -out $name.pem \
					-days 30 -extfile $name.ext "$@"
			fi
		}
		leaf good ca1 "DNS:up.test,DNS:*.wild.test,IP:198.18.3.2,URI:spiffe://mesh.test/ns/default/sa/up"
		leaf wrongca ca2 "DNS:up.test"
		leaf wrongname ca1 "DNS:other.test"
		leaf selfsigned self "DNS:up.test"
		leaf evil ca1 "DNS:up.test,URI:spiffe://mesh.test.evil/ns/default/sa/up"
		leaf partial ca1 "DNS:s*.wild.test"
		CN=up.test leaf cnonly ca1 ""
		CN=client-1 leaf client ca1 ""
		# expired: signed with openssl ca, which takes explicit dates
		mkdir -p caroot && : >caroot/index.txt && echo 1000 >caroot/serial
		cat >ca.cnf <<CNF
[ca]
default_ca = t
[t]
dir = caroot
database = caroot/index.txt
serial = caroot/serial
new_certs_dir = caroot
default_md = sha256
policy = any
copy_extensions = copy
[any]
commonName = supplied
CNF
		q openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout expired.key -out expired.csr \
			-subj "/CN=expired" -addext "subjectAltName=DNS:up.test"
		q openssl ca -batch -config ca.cnf -cert ca1.pem -keyfile ca1.key -in expired.csr -out expired.pem \
			-startdate 20200101000000Z -enddate 20200201000000Z
	)
}
