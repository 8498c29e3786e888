# Helpers for the registry tests and benchmark: start Debian's
# docker-registry on 127.0.0.1 with a free port (plain, htpasswd, TLS,
# token auth), make a throwaway CA, push fixtures with skopeo.  Source it
# after tests/lib.sh ($T, at_exit).

# A free TCP port on 127.0.0.1.
free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

# wait_port PORT: until something listens (5 s at most).
wait_port() {
	local i
	for i in $(seq 100); do
		(exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
		sleep 0.05
	done
	echo "nothing listens on port $1" >&2
	return 1
}

# make_ca DIR: DIR/ca.crt, DIR/server.{crt,key} for 127.0.0.1 and localhost.
make_ca() {
	local d=$1
	mkdir -p "$d"
	openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=kiln test CA" \
		-keyout "$d/ca.key" -out "$d/ca.crt" 2>/dev/null
	openssl req -newkey rsa:2048 -nodes -subj "/CN=127.0.0.1" \
		-keyout "$d/server.key" -out "$d/server.csr" 2>/dev/null
	printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n' >"$d/ext.cnf"
	openssl x509 -req -in "$d/server.csr" -CA "$d/ca.crt" -CAkey "$d/ca.key" -CAcreateserial \
		-days 2 -extfile "$d/ext.cnf" -out "$d/server.crt" 2>/dev/null
}

# start_registry DIR [htpasswd FILE | tls CADIR | token REALM CERT] : starts
# docker-registry with its storage in DIR; sets REG_PORT and REG (host:port).
start_registry() {
	local d=$1 mode=${2:-plain}
	mkdir -p "$d/data"
	REG_PORT=$(free_port)
	REG=127.0.0.1:$REG_PORT
	{
		echo "version: 0.1"
		echo "log: {level: error, accesslog: {disabled: true}}"
		echo "storage: {filesystem: {rootdirectory: $d/data}, delete: {enabled: true}, maintenance: {uploadpurging: {enabled: false}}}"
		echo "http:"
		echo "  addr: $REG"
		echo "  secret: kiln-test-secret"
		case $mode in
		tls) echo "  tls: {certificate: $3/server.crt, key: $3/server.key}" ;;
		esac
		case $mode in
		htpasswd) echo "auth: {htpasswd: {realm: kiln-test, path: $3}}" ;;
		token) echo "auth: {token: {realm: \"$3\", service: kiln-registry, issuer: kiln-token-server, rootcertbundle: $4}}" ;;
		esac
	} >"$d/config.yml"
	docker-registry serve "$d/config.yml" >"$d/log" 2>&1 &
	local pid=$!
	at_exit "kill $pid"
	wait_port "$REG_PORT" || { cat "$d/log" >&2; return 1; }
}

SKOPEO_POLICY=
# sk ARGS...: skopeo with a permissive policy of the test's own.
sk() {
	if [ -z "$SKOPEO_POLICY" ]; then
		SKOPEO_POLICY=$T/policy.json
		echo '{"default":[{"type":"insecureAcceptAnything"}]}' >"$SKOPEO_POLICY"
	fi
	skopeo --policy "$SKOPEO_POLICY" "$@"
}

# store_blobs_ok DIR: every blob under DIR/blobs/sha256 hashes to its name
# (temp and partial files aside).
store_blobs_ok() {
	local f bad=0
	for f in "$1"/blobs/sha256/*; do
		[ -f "$f" ] || continue
		case ${f##*/} in .*) continue ;; esac
		[ "$(sha256sum <"$f" | cut -d' ' -f1)" = "${f##*/}" ] || { echo "bad blob $f" >&2; bad=1; }
	done
	return $bad
}

# cache_clean DIR: `kiln cache verify` when it exists, else the blob check.
cache_clean() {
	if "$KILN" cache verify --help >/dev/null 2>&1; then
		"$KILN" cache verify --cache "$1" >/dev/null
	else
		store_blobs_ok "$1"
	fi
}
