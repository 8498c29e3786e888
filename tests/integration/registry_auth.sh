#!/usr/bin/env bash
# Registry auth and TLS: htpasswd Basic auth, TLS from a throwaway CA
# (--cert-file, --insecure-registry), and the Bearer token flow against the
# tests' own token server; credentials from $DOCKER_CONFIG and
# $REGISTRY_AUTH_FILE; passwords never printed, even at -v -v.
source "$(dirname "$0")/../lib.sh"
source "$TOP/tests/registry-lib.sh"
registry_setup docker-registry skopeo umoci jq htpasswd openssl python3
USER_NAME=alice
PASS='Pa55-w0rd!kiln'
B64=$(printf '%s:%s' "$USER_NAME" "$PASS" | base64 -w0)
# No credentials from the machine running the tests.
export HOME=$T/home DOCKER_CONFIG=$T/nodocker
unset REGISTRY_AUTH_FILE
mkdir -p "$HOME" "$DOCKER_CONFIG"
ALL_OUT=$T/all-output
: >"$ALL_OUT"
# k ARGS...: kiln at -v -v, its output kept (for the password check) and shown on stdout.
k() {
	local out rc
	out=$("$KILN" -v -v "$@" 2>&1)
	rc=$?
	printf '%s\n' "$out" >>"$ALL_OUT"
	printf '%s\n' "$out"
	return $rc
}
one_line_error() { # CMD...: fails, one line on stderr, nothing on stdout
	local out rc
	out=$("$KILN" "$@" 2>&1 >/dev/null)
	rc=$?
	printf '%s\n' "$out" >>"$ALL_OUT"
	LAST_ERR=$out
	[ $rc -ne 0 ] && [ "$(wc -l <<<"$out")" = 1 ] && [ -n "$out" ]
}

# ---- htpasswd (Basic) ----
htpasswd -Bbn "$USER_NAME" "$PASS" >"$T/htpasswd"
start_registry "$T/reg-basic" htpasswd "$T/htpasswd" || { fail "start registry"; done_testing; }
BASIC=$REG
ok "skopeo pushes with credentials" sk copy -q --dest-tls-verify=false --dest-creds "$USER_NAME:$PASS" oci:$L:two docker://$BASIC/kiln/two:1
ok "no credentials: one-line error" one_line_error pull --cache "$T/c0" $BASIC/kiln/two:1
ok "… saying a login is needed" grep -q "requires a login" <<<"$LAST_ERR"
mkdir -p "$T/wrong"
echo "{\"auths\":{\"$BASIC\":{\"auth\":\"$(printf '%s:nope' $USER_NAME | base64 -w0)\"}}}" >"$T/wrong/config.json"
ok "wrong password: one-line error" env DOCKER_CONFIG="$T/wrong" bash -c "$(declare -f one_line_error); KILN=$KILN ALL_OUT=$ALL_OUT; one_line_error pull --cache $T/c0 $BASIC/kiln/two:1"
mkdir -p "$T/dc"
echo "{\"auths\":{\"http://$BASIC/v1/\":{\"auth\":\"$B64\"}}}" >"$T/dc/config.json"
ok "\$DOCKER_CONFIG auths with base64 auth" env DOCKER_CONFIG="$T/dc" bash -c "$(declare -f k); KILN=$KILN ALL_OUT=$ALL_OUT; k pull --cache $T/c1 $BASIC/kiln/two:1" >/dev/null
mkdir -p "$HOME/.docker"
echo "{\"auths\":{\"$BASIC\":{\"auth\":\"$B64\"}}}" >"$HOME/.docker/config.json"
ok "~/.docker/config.json" env -u DOCKER_CONFIG bash -c "$(declare -f k); KILN=$KILN ALL_OUT=$ALL_OUT; k pull --cache $T/c2 $BASIC/kiln/two:1" >/dev/null
rm "$HOME/.docker/config.json"
echo "{\"auths\":{\"$BASIC\":{\"username\":\"$USER_NAME\",\"password\":\"$PASS\"}}}" >"$T/auth.json"
ok "\$REGISTRY_AUTH_FILE with username/password" env REGISTRY_AUTH_FILE="$T/auth.json" bash -c "$(declare -f k); KILN=$KILN ALL_OUT=$ALL_OUT; k pull --cache $T/c3 $BASIC/kiln/two:1" >/dev/null
ok "--auth-file and push with Basic auth" k push --auth-file "$T/auth.json" --cache "$T/c3" $BASIC/kiln/two:1 $BASIC/kiln/pushed:1 >/dev/null
ok "pushed image readable by skopeo" sk inspect --tls-verify=false --creds "$USER_NAME:$PASS" docker://$BASIC/kiln/pushed:1 >/dev/null
ok "store clean" cache_clean "$T/c3"

# ---- TLS from a throwaway CA ----
make_ca "$T/ca"
start_registry "$T/reg-tls" tls "$T/ca" || { fail "start TLS registry"; done_testing; }
TLS=$REG
mkdir -p "$T/ca-skopeo" && cp "$T/ca/ca.crt" "$T/ca-skopeo/"
ok "skopeo pushes over TLS" sk copy -q --dest-cert-dir "$T/ca-skopeo" oci:$L:two docker://$TLS/kiln/two:1
ok "unknown CA: one-line error" one_line_error pull --cache "$T/c4" $TLS/kiln/two:1
ok "… about the certificate" grep -qi "certificate" <<<"$LAST_ERR"
ok "no fallback to plain HTTP after a certificate failure" test ! -e "$T/c4/blobs/sha256/$(ls "$T/c1/blobs/sha256" | head -1)"
ok "--cert-file CA" k pull --cache "$T/c4" --cert-file "$T/ca/ca.crt" $TLS/kiln/two:1 >/dev/null
ok "--insecure-registry HOST:PORT (unverified TLS)" k pull --cache "$T/c5" --insecure-registry $TLS $TLS/kiln/two:1 >/dev/null
ok "HTTPS was used" grep -q "GET https://$TLS/v2/kiln/two/manifests/1 -> 200" "$ALL_OUT"
ok "push over TLS with --cert-file" k push --cache "$T/c4" --cert-file "$T/ca/ca.crt" $TLS/kiln/two:1 $TLS/kiln/copy:1 >/dev/null

# ---- Bearer tokens ----
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=kiln token signer" \
	-keyout "$T/token.key" -out "$T/token.crt" 2>/dev/null
TPORT=$(free_port)
python3 "$TOP/tests/tools/token_server.py" $TPORT "$T/token.key" "$T/token.crt" "$USER_NAME:$PASS" "$T/token.log" &
at_exit "kill $!"
wait_port $TPORT || fail "token server"
start_registry "$T/reg-token" token "http://127.0.0.1:$TPORT/token" "$T/token.crt" || { fail "start token registry"; done_testing; }
TOK=$REG
ok "skopeo pushes through the token flow" sk copy -q --dest-tls-verify=false --dest-creds "$USER_NAME:$PASS" oci:$L:two docker://$TOK/public/two:1
sk copy -q --dest-tls-verify=false --dest-creds "$USER_NAME:$PASS" oci:$L:two docker://$TOK/private/two:1
: >"$T/token.log"
ok "anonymous token: public pull" k pull --cache "$T/c6" $TOK/public/two:1 >/dev/null
ok "… one token request for the whole pull" test "$(grep -c 'anonymous repository:public/two:pull' "$T/token.log")" = 1
ok "anonymous: private repository refused in one line" one_line_error pull --cache "$T/c7" $TOK/private/two:1
ok "… which says why" grep -qi "unauthorized\|refused\|denied" <<<"$LAST_ERR"
echo "{\"auths\":{\"$TOK\":{\"auth\":\"$B64\"}}}" >"$T/dc/config.json"
: >"$T/token.log"
ok "credentials: private pull" env DOCKER_CONFIG="$T/dc" bash -c "$(declare -f k); KILN=$KILN ALL_OUT=$ALL_OUT; k pull --cache $T/c7 $TOK/private/two:1" >/dev/null
ok "… one token request, as alice" test "$(cat "$T/token.log")" = "alice repository:private/two:pull"
ok "push with a pull,push token and a mount scope" env DOCKER_CONFIG="$T/dc" bash -c "$(declare -f k); KILN=$KILN ALL_OUT=$ALL_OUT; k push --cache $T/c7 $TOK/private/two:1 $TOK/private/copy:1" >/dev/null
ok "… mounted from the source repository" grep -q "3 mounted" "$ALL_OUT"
ok "… with both scopes in one token request" grep -q "alice repository:private/copy:pull,push repository:private/two:pull" "$T/token.log"
echo "{\"auths\":{\"$TOK\":{\"auth\":\"$(printf '%s:bad' $USER_NAME | base64 -w0)\"}}}" >"$T/wrong/config.json"
ok "wrong password at the token server: one line" env DOCKER_CONFIG="$T/wrong" bash -c "$(declare -f one_line_error); KILN=$KILN ALL_OUT=$ALL_OUT; one_line_error pull --cache $T/c8 $TOK/private/two:1"
ok "store clean" cache_clean "$T/c7"

# ---- secrets ----
ok "kiln output was captured" test "$(wc -l <"$ALL_OUT")" -gt 20
ok "the password never appears in any output" bash -c "! grep -qF -- '$PASS' '$ALL_OUT'"
ok "nor its base64 form" bash -c "! grep -qF -- '$B64' '$ALL_OUT'"
ok "nor a token" bash -c "! grep -qE 'eyJ[A-Za-z0-9_-]{10,}' '$ALL_OUT'"
done_testing
