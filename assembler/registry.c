/* The registry client: options, hosts (scheme, auth, tokens), the HTTP
 * request loop with retries, manifests, parallel blob downloads into the
 * store, pull and image_resolve.  See registry.h. */
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "oci.h"
#include "ref.h"
#include "registry.h"
#include "registry_internal.h"
#include "util.h"

#define DEFAULT_JOBS	      4
#define DEFAULT_ATTEMPTS      6
#define DEFAULT_RETRY_BASE_MS 500
#define DEFAULT_STALL_SECONDS 30
#define BACKOFF_MAX_MS	      20000
#define RETRY_AFTER_MAX_S     60
#define SMALL_BODY_MAX	      ((size_t)64 << 10)
#define TOKEN_BODY_MAX	      ((size_t)1 << 20)
#define USER_AGENT	      "kiln/0.1.0"

/* ---- options ---- */

static long env_long(const char *name, long dflt)
{
	const char *v = getenv(name);
	uint64_t u;
	if (v && *v && parse_u64(v, 10, &u) == 0 && u < 1000000)
		return (long)u;
	return dflt;
}

void registry_options_init(struct registry_options *o)
{
	memset(o, 0, sizeof *o);
	o->jobs = DEFAULT_JOBS;
	o->max_attempts = DEFAULT_ATTEMPTS;
	o->retry_base_ms = env_long("KILN_RETRY_BASE_MS", DEFAULT_RETRY_BASE_MS);
	o->stall_seconds = env_long("KILN_STALL_TIMEOUT", DEFAULT_STALL_SECONDS);
	if (o->stall_seconds < 1)
		o->stall_seconds = 1;
}

void registry_options_release(struct registry_options *o)
{
	free(o->os);
	free(o->arch);
	free(o->cert_file);
	free(o->auth_file);
	for (size_t i = 0; i < o->ninsecure; i++)
		free(o->insecure[i]);
	free(o->insecure);
	for (size_t i = 0; i < o->nmirrors; i++) {
		free(o->mirrors[i].domain);
		free(o->mirrors[i].url);
	}
	free(o->mirrors);
	memset(o, 0, sizeof *o);
}

void registry_options_add_insecure(struct registry_options *o, const char *host)
{
	o->insecure = xrealloc(o->insecure, (o->ninsecure + 1) * sizeof *o->insecure);
	/* Accept "http://host:port/" as well as "host:port". */
	const char *p = strstr(host, "://");
	p = p ? p + 3 : host;
	o->insecure[o->ninsecure++] = xstrndup(p, strcspn(p, "/"));
}

int registry_options_add_mirror(struct registry_options *o, const char *spec,
				struct kiln_error **err)
{
	const char *eq = strchr(spec, '=');
	if (eq == NULL || eq == spec || eq[1] == 0)
		return kiln_error_make(err, 0, "mirror `%s`: expected REGISTRY=URL", spec);
	cleanup_free char *domain = xstrndup(spec, (size_t)(eq - spec));
	const char *url = eq + 1;
	char *full;
	if (strstr(url, "://") == NULL) {
		cleanup_free char *hostport = xstrndup(url, strcspn(url, "/"));
		full = xasprintf("%s://%s", host_is_loopback(hostport) ? "http" : "https", url);
	} else if (str_has_prefix(url, "http://") || str_has_prefix(url, "https://")) {
		full = xstrdup(url);
	} else {
		return kiln_error_make(err, 0, "mirror `%s`: URL must be http:// or https://",
				       spec);
	}
	size_t n = strlen(full);
	while (n > 0 && full[n - 1] == '/')
		full[--n] = 0;
	o->mirrors = xrealloc(o->mirrors, (o->nmirrors + 1) * sizeof *o->mirrors);
	o->mirrors[o->nmirrors].domain = steal_pointer(&domain);
	o->mirrors[o->nmirrors].url = full;
	o->nmirrors++;
	return 0;
}

const char *registry_host_arch(void)
{
	struct utsname u;
	if (uname(&u) != 0)
		return "amd64";
	if (strcmp(u.machine, "x86_64") == 0)
		return "amd64";
	if (strcmp(u.machine, "aarch64") == 0)
		return "arm64";
	if (strncmp(u.machine, "armv7", 5) == 0)
		return "arm";
	if (strcmp(u.machine, "riscv64") == 0)
		return "riscv64";
	if (strcmp(u.machine, "s390x") == 0)
		return "s390x";
	if (strcmp(u.machine, "ppc64le") == 0)
		return "ppc64le";
	if (strcmp(u.machine, "i686") == 0 || strcmp(u.machine, "i386") == 0)
		return "386";
	return "amd64";
}

/* ---- client and hosts ---- */

struct reg_token {
	char *scope;
	char *value; /* secret */
	time_t expires;
};

struct reg_host {
	char *domain;	/* reference domain ("docker.io", "127.0.0.1:5000") */
	char *hostport; /* the host contacted */
	char *base;	/* "https://hostport" or the mirror URL */
	bool fixed_scheme;
	bool insecure;
	bool loopback;
	bool pinged;
	enum auth_scheme scheme;
	char *realm, *service;
	bool creds_loaded, has_creds;
	struct registry_credentials creds;
	struct reg_token *tokens;
	size_t ntokens;
};

struct registry_client {
	const struct registry_options *o;
	CURLSH *share;
	CURL *easy;
	struct reg_host **hosts;
	size_t nhosts;
	unsigned int seed;
	char *want_os, *want_arch, *want_variant;
	bool bars; /* progress bars on a TTY */
	bool chatty;
};

const struct registry_options *client_options(const struct registry_client *c)
{
	return c->o;
}

bool client_chatty(const struct registry_client *c)
{
	return c->chatty;
}

const char *host_base(const struct reg_host *h)
{
	return h->base;
}

const char *host_domain(const struct reg_host *h)
{
	return h->domain;
}

static void token_release(struct reg_token *t)
{
	free(t->scope);
	if (t->value) {
		memset(t->value, 0, strlen(t->value));
		free(t->value);
	}
	t->scope = t->value = NULL;
}

static void host_free(struct reg_host *h)
{
	if (h == NULL)
		return;
	free(h->domain);
	free(h->hostport);
	free(h->base);
	free(h->realm);
	free(h->service);
	registry_credentials_release(&h->creds);
	for (size_t i = 0; i < h->ntokens; i++)
		token_release(&h->tokens[i]);
	free(h->tokens);
	free(h);
}

struct registry_client *registry_client_new(const struct registry_options *o,
					    struct kiln_error **err)
{
	/* Reference-counted (and thread-safe) in libcurl >= 7.84; undone in
	 * registry_client_free. */
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != 0) {
		kiln_error_make(err, 0, "libcurl initialisation failed");
		return NULL;
	}
	struct registry_client *c = xcalloc(1, sizeof *c);
	c->o = o;
	c->share = curl_share_init();
	curl_share_setopt(c->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS);
	curl_share_setopt(c->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION);
	curl_share_setopt(c->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_CONNECT);
	c->easy = curl_easy_init();
	if (c->easy == NULL || c->share == NULL) {
		registry_client_free(c);
		kiln_error_make(err, 0, "libcurl: cannot create a handle");
		return NULL;
	}
	c->seed = (unsigned int)time(NULL) ^ (unsigned int)getpid();
	char *os = NULL, *arch = NULL, *variant = NULL;
	platform_split(o->arch ? o->arch : registry_host_arch(), &os, &arch, &variant);
	c->want_os = xstrdup(o->os ? o->os : os ? os : "linux");
	free(os);
	c->want_arch = arch;
	c->want_variant = variant;
	c->chatty = o->progress != REGISTRY_PROGRESS_NONE && kiln_log_level >= LOG_NORMAL;
	c->bars = c->chatty && o->progress == REGISTRY_PROGRESS_AUTO && isatty(2) &&
		  getenv("TERM") != NULL && strcmp(getenv("TERM"), "dumb") != 0;
	return c;
}

void registry_client_free(struct registry_client *c)
{
	if (c == NULL)
		return;
	for (size_t i = 0; i < c->nhosts; i++)
		host_free(c->hosts[i]);
	free(c->hosts);
	if (c->easy)
		curl_easy_cleanup(c->easy);
	if (c->share)
		curl_share_cleanup(c->share);
	free(c->want_os);
	free(c->want_arch);
	free(c->want_variant);
	free(c);
	curl_global_cleanup();
}

void registry_client_freep(struct registry_client **c)
{
	registry_client_free(*c);
	*c = NULL;
}

static bool option_insecure(const struct registry_options *o, const char *hostport)
{
	for (size_t i = 0; i < o->ninsecure; i++)
		if (strcasecmp(o->insecure[i], hostport) == 0)
			return true;
	/* "host" also covers every port of it. */
	size_t n = strcspn(hostport, ":");
	if (hostport[0] == '[')
		n = strcspn(hostport, "]") + 1;
	for (size_t i = 0; i < o->ninsecure; i++)
		if (strlen(o->insecure[i]) == n && strncasecmp(o->insecure[i], hostport, n) == 0)
			return true;
	return false;
}

/* "host:port" of an http(s) URL.  Caller frees. */
static char *url_hostport(const char *url)
{
	const char *p = strstr(url, "://");
	p = p ? p + 3 : url;
	const char *at = NULL;
	size_t n = strcspn(p, "/?#");
	for (size_t i = 0; i < n; i++)
		if (p[i] == '@')
			at = p + i;
	if (at) {
		n -= (size_t)(at + 1 - p);
		p = at + 1;
	}
	return xstrndup(p, n);
}

static struct reg_host *host_get(struct registry_client *c, const char *domain)
{
	for (size_t i = 0; i < c->nhosts; i++)
		if (strcmp(c->hosts[i]->domain, domain) == 0)
			return c->hosts[i];
	struct reg_host *h = xcalloc(1, sizeof *h);
	h->domain = xstrdup(domain);
	for (size_t i = 0; i < c->o->nmirrors; i++) {
		if (strcmp(c->o->mirrors[i].domain, domain) == 0) {
			h->base = xstrdup(c->o->mirrors[i].url);
			h->fixed_scheme = true;
			h->hostport = url_hostport(h->base);
			break;
		}
	}
	if (h->hostport == NULL) {
		struct image_ref tmp = {.domain = (char *)domain};
		h->hostport = xstrdup(ref_registry_host(&tmp));
	}
	h->insecure = option_insecure(c->o, h->hostport) || option_insecure(c->o, domain);
	h->loopback = host_is_loopback(h->hostport);
	/* Loopback speaks plain HTTP first (allowed there, and it spares loading
	 * the CA store); a TLS server answers that with 400 and gets HTTPS. */
	if (h->base == NULL)
		h->base = xasprintf("%s://%s", h->loopback && !h->insecure ? "http" : "https",
				    h->hostport);
	c->hosts = xrealloc(c->hosts, (c->nhosts + 1) * sizeof *c->hosts);
	c->hosts[c->nhosts++] = h;
	return h;
}

void http_resp_release(struct http_resp *r)
{
	strbuf_release(&r->body);
	free(r->location);
	free(r->digest);
	free(r->content_type);
	free(r->www_auth);
	free(r->retry_after);
	free(r->content_range);
	memset(r, 0, sizeof *r);
}

/* ---- one HTTP exchange ---- */

struct body_sink {
	struct http_resp *rs;
	size_t max;
};

static size_t sink_write(char *ptr, size_t size, size_t nmemb, void *ud)
{
	struct body_sink *s = ud;
	size_t n = size * nmemb;
	if (s->rs->body.len + n > s->max) {
		s->rs->too_big = true;
		return 0;
	}
	strbuf_append(&s->rs->body, ptr, n);
	return n;
}

struct body_source {
	const struct http_req *rq;
	uint64_t pos;
};

static size_t source_read(char *buf, size_t size, size_t nitems, void *ud)
{
	struct body_source *s = ud;
	uint64_t left = s->rq->body_len - s->pos;
	size_t n = size * nitems;
	if (n > left)
		n = (size_t)left;
	if (n == 0)
		return 0;
	if (s->rq->fd >= 0) {
		ssize_t r;
		do
			r = pread(s->rq->fd, buf, n, (off_t)(s->rq->fd_off + s->pos));
		while (r < 0 && errno == EINTR);
		if (r <= 0)
			return CURL_READFUNC_ABORT;
		n = (size_t)r;
	} else {
		memcpy(buf, (const char *)s->rq->body + s->pos, n);
	}
	s->pos += n;
	return n;
}

static int source_seek(void *ud, curl_off_t offset, int origin)
{
	struct body_source *s = ud;
	if (origin != SEEK_SET || offset < 0 || (uint64_t)offset > s->rq->body_len)
		return CURL_SEEKFUNC_FAIL;
	s->pos = (uint64_t)offset;
	return CURL_SEEKFUNC_OK;
}

/* Last value of response header NAME (of the final response), or NULL. Caller frees. */
static char *easy_header(CURL *e, const char *name)
{
	struct curl_header *h = NULL;
	if (curl_easy_header(e, name, 0, CURLH_HEADER, -1, &h) != CURLHE_OK || h == NULL)
		return NULL;
	return xstrdup(h->value);
}

/* The first WWW-Authenticate challenge kiln speaks.  Caller frees. */
static char *easy_www_auth(CURL *e)
{
	struct curl_header *h = NULL;
	char *first = NULL;
	for (size_t i = 0;; i++) {
		if (curl_easy_header(e, "WWW-Authenticate", i, CURLH_HEADER, -1, &h) != CURLHE_OK)
			break;
		struct auth_challenge ch;
		if (auth_challenge_parse(h->value, &ch) == 0) {
			auth_challenge_release(&ch);
			free(first);
			return xstrdup(h->value);
		}
		if (first == NULL)
			first = xstrdup(h->value);
		if (h->amount <= i + 1)
			break;
	}
	return first;
}

/* Common options of every handle kiln uses. */
static void easy_setup(struct registry_client *c, CURL *e, const char *url, bool insecure,
		       char *errbuf)
{
	curl_easy_setopt(e, CURLOPT_URL, url);
	curl_easy_setopt(e, CURLOPT_SHARE, c->share);
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_USERAGENT, USER_AGENT);
	curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(e, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(e, CURLOPT_MAXREDIRS, 8L);
	curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT, 30L);
	curl_easy_setopt(e, CURLOPT_LOW_SPEED_LIMIT, 1L);
	curl_easy_setopt(e, CURLOPT_LOW_SPEED_TIME, c->o->stall_seconds);
	curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
	curl_easy_setopt(e, CURLOPT_BUFFERSIZE, 256L * 1024);
	curl_easy_setopt(e, CURLOPT_ERRORBUFFER, errbuf);
	errbuf[0] = 0;
	if (c->o->cert_file) {
		/* The bundle replaces the default file; the system's hashed
		 * directory stays trusted too. */
		curl_easy_setopt(e, CURLOPT_CAINFO, c->o->cert_file);
		if (access("/etc/ssl/certs", R_OK) == 0)
			curl_easy_setopt(e, CURLOPT_CAPATH, "/etc/ssl/certs");
	}
	if (insecure) {
		curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 0L);
		curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 0L);
	}
	/* Never CURLOPT_VERBOSE, at any -v: it would print Authorization. */
}

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(int64_t ms)
{
	if (ms <= 0)
		return;
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000};
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

/* The wait before attempt ATTEMPT+1: exponential with jitter, or what
 * Retry-After asks (capped). */
static int64_t backoff_ms(struct registry_client *c, int attempt, long retry_after)
{
	int64_t d = c->o->retry_base_ms;
	for (int i = 1; i < attempt && d < BACKOFF_MAX_MS; i++)
		d *= 2;
	if (d > BACKOFF_MAX_MS)
		d = BACKOFF_MAX_MS;
	d = d / 2 + (int64_t)(rand_r(&c->seed) % (d / 2 + 1));
	if (retry_after >= 0) {
		int64_t ra =
		    (int64_t)(retry_after > RETRY_AFTER_MAX_S ? RETRY_AFTER_MAX_S : retry_after) *
		    1000;
		if (ra > d)
			d = ra;
	}
	return d;
}

static bool curl_code_retryable(CURLcode code)
{
	switch (code) {
	case CURLE_COULDNT_CONNECT:
	case CURLE_RECV_ERROR:
	case CURLE_SEND_ERROR:
	case CURLE_PARTIAL_FILE:
	case CURLE_GOT_NOTHING:
	case CURLE_OPERATION_TIMEDOUT:
	case CURLE_HTTP2:
	case CURLE_HTTP2_STREAM:
	case CURLE_WEIRD_SERVER_REPLY:
		return true;
	default:
		return false;
	}
}

static bool status_retryable(long status)
{
	return status == 429 || status == 408 || status == 500 || status == 502 || status == 503 ||
	       status == 504;
}

/* A curl failure as one phrase. */
static const char *curl_reason(const struct http_resp *rs)
{
	if (rs->code == CURLE_OPERATION_TIMEDOUT)
		return "transfer stalled (timed out)";
	if (rs->code == CURLE_PARTIAL_FILE)
		return "connection closed before the whole body arrived";
	return rs->errbuf[0] ? rs->errbuf : curl_easy_strerror(rs->code);
}

/* One exchange on the client's reusable handle.  AUTH is a whole
 * "Authorization: …" header line or NULL. */
static void http_perform(struct registry_client *c, const struct http_req *rq, bool insecure,
			 const char *auth, struct http_resp *rs)
{
	CURL *e = c->easy;
	curl_easy_reset(e);
	easy_setup(c, e, rq->url, insecure, rs->errbuf);
	struct curl_slist *hdrs = NULL;
	cleanup_free char *accept = rq->accept ? xasprintf("Accept: %s", rq->accept) : NULL;
	cleanup_free char *ctype =
	    rq->content_type ? xasprintf("Content-Type: %s", rq->content_type) : NULL;
	cleanup_free char *crange =
	    rq->content_range ? xasprintf("Content-Range: %s", rq->content_range) : NULL;
	if (accept)
		hdrs = curl_slist_append(hdrs, accept);
	if (ctype)
		hdrs = curl_slist_append(hdrs, ctype);
	if (crange)
		hdrs = curl_slist_append(hdrs, crange);
	if (auth)
		hdrs = curl_slist_append(hdrs, auth);
	hdrs = curl_slist_append(hdrs, "Expect:");
	curl_easy_setopt(e, CURLOPT_HTTPHEADER, hdrs);
	struct body_sink sink = {rs, rq->max_body ? rq->max_body : SMALL_BODY_MAX};
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, sink_write);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, &sink);
	curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, rq->follow ? 1L : 0L);
	struct body_source src = {rq, 0};
	const char *m = rq->method;
	if (strcmp(m, "HEAD") == 0) {
		curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
	} else if (strcmp(m, "PUT") == 0 || strcmp(m, "PATCH") == 0 ||
		   (strcmp(m, "POST") == 0 && rq->body_len > 0)) {
		curl_easy_setopt(e, CURLOPT_UPLOAD, 1L);
		curl_easy_setopt(e, CURLOPT_READFUNCTION, source_read);
		curl_easy_setopt(e, CURLOPT_READDATA, &src);
		curl_easy_setopt(e, CURLOPT_SEEKFUNCTION, source_seek);
		curl_easy_setopt(e, CURLOPT_SEEKDATA, &src);
		curl_easy_setopt(e, CURLOPT_INFILESIZE_LARGE, (curl_off_t)rq->body_len);
		if (strcmp(m, "PUT") != 0)
			curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, m);
	} else if (strcmp(m, "POST") == 0) {
		curl_easy_setopt(e, CURLOPT_POST, 1L);
		curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, 0L);
		curl_easy_setopt(e, CURLOPT_POSTFIELDS, "");
	} else if (strcmp(m, "GET") != 0) {
		curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, m);
	}
	rs->code = curl_easy_perform(e);
	curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &rs->status);
	if (rs->code == CURLE_OK || rs->status != 0) {
		rs->location = easy_header(e, "Location");
		rs->digest = easy_header(e, "Docker-Content-Digest");
		rs->content_type = easy_header(e, "Content-Type");
		rs->www_auth = easy_www_auth(e);
		rs->retry_after = easy_header(e, "Retry-After");
		rs->content_range = easy_header(e, "Range");
	}
	curl_easy_setopt(e, CURLOPT_HTTPHEADER, NULL);
	curl_slist_free_all(hdrs);
	log_debug("%s %s -> %ld%s%s", rq->method, rq->url, rs->status, rs->code ? ": " : "",
		  rs->code ? curl_reason(rs) : "");
}

char *http_error_text(const struct http_resp *rs)
{
	struct strbuf sb = STRBUF_INIT;
	strbuf_printf(&sb, "HTTP %ld", rs->status);
	if (rs->body.len > 0) {
		json_error_t jerr;
		cleanup_json json_t *j = json_loadb(rs->body.buf, rs->body.len, 0, &jerr);
		json_t *e0 = json_array_get(json_object_get(j, "errors"), 0);
		const char *code = json_string_value(json_object_get(e0, "code"));
		const char *msg = json_string_value(json_object_get(e0, "message"));
		if (code || msg) {
			strbuf_printf(&sb, " (%s%s%s)", code ? code : "", code && msg ? ": " : "",
				      msg ? msg : "");
		}
	}
	return strbuf_detach(&sb, NULL);
}

/* After response RS to attempt ATTEMPT of RQ: when it failed in a way worth
 * another try and attempts remain, waits the backoff (the server's
 * Retry-After when it sent one) and returns true.  At -v the wait is logged
 * with why: curl's reason, else http_error_text(RS) when DESCRIBE_STATUS,
 * else "server busy". */
static bool retry_wait(struct registry_client *c, const struct http_req *rq,
		       const struct http_resp *rs, int attempt, bool describe_status)
{
	long ra = retry_after_parse(rs->retry_after, time(NULL));
	bool again = rq->retry && attempt < c->o->max_attempts &&
		     ((rs->code == CURLE_OK && status_retryable(rs->status)) ||
		      (rs->code != CURLE_OK && curl_code_retryable(rs->code)));
	if (!again)
		return false;
	int64_t d = backoff_ms(c, attempt, rs->code == CURLE_OK ? ra : -1);
	cleanup_free char *why = rs->code != CURLE_OK ? xstrdup(curl_reason(rs))
				 : describe_status    ? http_error_text(rs)
						      : xstrdup("server busy");
	log_verbose("%s %s: %s; retrying in %.1fs", rq->method, rq->url, why, (double)d / 1000);
	sleep_ms(d);
	return true;
}

/* The error for RQ when no HTTP response came (curl's reason). */
static int transport_error(const struct http_req *rq, const struct http_resp *rs, int attempt,
			   struct kiln_error **err)
{
	if (attempt > 1)
		return kiln_error_make(err, 0, "%s %s: %s (after %d attempts)", rq->method, rq->url,
				       curl_reason(rs), attempt);
	return kiln_error_make(err, 0, "%s %s: %s", rq->method, rq->url, curl_reason(rs));
}

/* A request to a URL that belongs to no registry host (a token realm), with
 * retries.  Returns -1 when no response came. */
static int plain_request(struct registry_client *c, const struct http_req *rq, bool insecure,
			 const char *auth, struct http_resp *rs, struct kiln_error **err)
{
	for (int attempt = 1;; attempt++) {
		http_resp_release(rs);
		http_perform(c, rq, insecure, auth, rs);
		if (retry_wait(c, rq, rs, attempt, false))
			continue;
		if (rs->code != CURLE_OK && !(rs->too_big && rs->status != 0))
			return transport_error(rq, rs, attempt, err);
		return 0;
	}
}

/* ---- auth ---- */

static void host_load_creds(struct registry_client *c, struct reg_host *h)
{
	if (h->creds_loaded)
		return;
	h->creds_loaded = true;
	cleanup_error struct kiln_error *e = NULL;
	int r = registry_credentials_lookup(c->o->auth_file, h->domain, &h->creds, &e);
	if (r < 0) {
		log_warn("%s", e->msg);
	} else if (r == 0 && strcmp(h->domain, h->hostport) != 0) {
		r = registry_credentials_lookup(c->o->auth_file, h->hostport, &h->creds, &e);
		if (r < 0)
			log_warn("%s", e->msg);
	}
	h->has_creds = r > 0;
	if (h->has_creds)
		log_verbose("%s: using credentials of user %s", h->domain, h->creds.username);
}

static const char *token_find(struct reg_host *h, const char *scope)
{
	time_t now = time(NULL);
	for (size_t i = 0; i < h->ntokens; i++)
		if (strcmp(h->tokens[i].scope, scope) == 0 && h->tokens[i].expires > now + 5)
			return h->tokens[i].value;
	return NULL;
}

static void token_drop(struct reg_host *h, const char *scope)
{
	for (size_t i = 0; i < h->ntokens; i++) {
		if (strcmp(h->tokens[i].scope, scope) == 0) {
			token_release(&h->tokens[i]);
			h->tokens[i] = h->tokens[--h->ntokens];
			return;
		}
	}
}

/* Asks H's token realm for a token covering SCOPE (space-separated scopes). */
static int token_fetch(struct registry_client *c, struct reg_host *h, const char *scope,
		       struct kiln_error **err)
{
	if (h->realm == NULL)
		return kiln_error_make(err, 0, "%s: Bearer challenge without a realm", h->domain);
	struct strbuf url = STRBUF_INIT;
	strbuf_puts(&url, h->realm);
	char sep = strchr(h->realm, '?') ? '&' : '?';
	if (h->service) {
		char *s = curl_easy_escape(NULL, h->service, 0);
		strbuf_printf(&url, "%cservice=%s", sep, s);
		curl_free(s);
		sep = '&';
	}
	for (const char *p = scope; *p;) {
		size_t n = strcspn(p, " ");
		if (n > 0) {
			char *s = curl_easy_escape(NULL, p, (int)n);
			strbuf_printf(&url, "%cscope=%s", sep, s);
			curl_free(s);
			sep = '&';
		}
		p += n;
		while (*p == ' ')
			p++;
	}
	cleanup_free char *u = strbuf_detach(&url, NULL);
	host_load_creds(c, h);
	cleanup_free char *auth = NULL;
	if (h->has_creds) {
		cleanup_free char *basic = auth_basic_header(&h->creds);
		auth = xasprintf("Authorization: %s", basic);
		memset(basic, 0, strlen(basic));
	}
	cleanup_free char *realm_host = url_hostport(h->realm);
	bool insecure = option_insecure(c->o, realm_host);
	struct http_req rq = {.method = "GET",
			      .url = u,
			      .fd = -1,
			      .max_body = TOKEN_BODY_MAX,
			      .retry = true,
			      .follow = true};
	struct http_resp rs = {0};
	int r = plain_request(c, &rq, insecure, auth, &rs, err);
	if (auth)
		memset(auth, 0, strlen(auth));
	if (r < 0) {
		http_resp_release(&rs);
		return kiln_error_wrap(err, "%s: token", h->domain);
	}
	if (rs.status != 200) {
		cleanup_free char *why = http_error_text(&rs);
		http_resp_release(&rs);
		if (h->has_creds)
			return kiln_error_make(err, 0,
					       "%s: token server %s refused user %s for %s: %s",
					       h->domain, h->realm, h->creds.username, scope, why);
		return kiln_error_make(err, 0,
				       "%s: token server %s refused anonymous access to %s: %s "
				       "(no credentials found for %s)",
				       h->domain, h->realm, scope, why, h->domain);
	}
	json_error_t jerr;
	cleanup_json json_t *j = json_loadb(rs.body.buf, rs.body.len, 0, &jerr);
	memset(rs.body.buf, 0, rs.body.len);
	http_resp_release(&rs);
	const char *tok = json_string_value(json_object_get(j, "token"));
	if (tok == NULL || *tok == 0)
		tok = json_string_value(json_object_get(j, "access_token"));
	if (tok == NULL || *tok == 0)
		return kiln_error_make(err, 0, "%s: token server %s answered without a token",
				       h->domain, h->realm);
	json_int_t expires = json_integer_value(json_object_get(j, "expires_in"));
	if (expires < 60)
		expires = 60;
	token_drop(h, scope);
	h->tokens = xrealloc(h->tokens, (h->ntokens + 1) * sizeof *h->tokens);
	h->tokens[h->ntokens++] =
	    (struct reg_token){xstrdup(scope), xstrdup(tok), time(NULL) + (time_t)expires};
	/* jansson's copy of the token goes with the JSON; overwrite it. */
	memset((char *)tok, 0, strlen(tok));
	log_debug("%s: got a token for %s", h->domain, scope);
	return 0;
}

/* The "Authorization: …" line for SCOPE on H, or NULL when H needs none. */
static int host_auth_line(struct registry_client *c, struct reg_host *h, const char *scope,
			  char **out, struct kiln_error **err)
{
	*out = NULL;
	if (scope == NULL)
		return 0;
	if (h->scheme == AUTH_BASIC) {
		host_load_creds(c, h);
		if (!h->has_creds)
			return 0;
		cleanup_free char *basic = auth_basic_header(&h->creds);
		*out = xasprintf("Authorization: %s", basic);
		memset(basic, 0, strlen(basic));
	} else if (h->scheme == AUTH_BEARER) {
		const char *t = token_find(h, scope);
		if (t == NULL) {
			if (token_fetch(c, h, scope, err) < 0)
				return -1;
			t = token_find(h, scope);
		}
		*out = xasprintf("Authorization: Bearer %s", t);
	}
	return 0;
}

static void secret_free(char *s)
{
	if (s) {
		memset(s, 0, strlen(s));
		free(s);
	}
}

/* Reads the challenge of a 401 into H. */
static int host_take_challenge(struct reg_host *h, const char *www_auth, struct kiln_error **err)
{
	struct auth_challenge ch;
	if (www_auth == NULL)
		return kiln_error_make(err, 0, "%s: HTTP 401 without a WWW-Authenticate challenge",
				       h->domain);
	if (auth_challenge_parse(www_auth, &ch) < 0)
		return kiln_error_make(err, 0, "%s: unsupported authentication scheme in `%.40s`",
				       h->domain, www_auth);
	h->scheme = ch.scheme;
	free(h->realm);
	free(h->service);
	h->realm = steal_pointer(&ch.realm);
	h->service = steal_pointer(&ch.service);
	auth_challenge_release(&ch);
	return 0;
}

/* ---- hosts: ping and request ---- */

static int host_ping(struct registry_client *c, struct reg_host *h, struct kiln_error **err)
{
	bool switched = false;
	for (;;) {
		cleanup_free char *url = xasprintf("%s/v2/", h->base);
		struct http_req rq = {
		    .method = "GET", .url = url, .fd = -1, .retry = true, .follow = true};
		struct http_resp rs = {0};
		bool https = str_has_prefix(h->base, "https://");
		http_perform(c, &rq, h->insecure, NULL, &rs);
		/* HTTPS that does not even handshake: plain HTTP, where allowed. */
		if (https && !switched && !h->fixed_scheme && (h->loopback || h->insecure) &&
		    (rs.code == CURLE_SSL_CONNECT_ERROR || rs.code == CURLE_RECV_ERROR ||
		     rs.code == CURLE_GOT_NOTHING)) {
			log_debug("%s: no TLS (%s); using plain HTTP", h->domain, curl_reason(&rs));
			free(h->base);
			h->base = xasprintf("http://%s", h->hostport);
			http_resp_release(&rs);
			switched = true;
			continue;
		}
		/* Plain HTTP to a TLS port (loopback tries HTTP first). */
		if (!https && !switched && !h->fixed_scheme && h->loopback &&
		    ((rs.code == CURLE_OK && rs.status == 400) || rs.code == CURLE_GOT_NOTHING ||
		     rs.code == CURLE_RECV_ERROR || rs.code == CURLE_WEIRD_SERVER_REPLY)) {
			log_debug("%s: plain HTTP refused; using HTTPS", h->domain);
			free(h->base);
			h->base = xasprintf("https://%s", h->hostport);
			http_resp_release(&rs);
			switched = true;
			continue;
		}
		if (rs.code != CURLE_OK || status_retryable(rs.status)) {
			http_resp_release(&rs);
			/* Retry through the common loop for its backoff and message. */
			if (plain_request(c, &rq, h->insecure, NULL, &rs, err) < 0) {
				http_resp_release(&rs);
				if (https && (*err) && !h->insecure && !h->loopback)
					return kiln_error_wrap(err, "%s", h->domain);
				return -1;
			}
		}
		int r = 0;
		if (rs.status == 401) {
			r = host_take_challenge(h, rs.www_auth, err);
		} else if (rs.status == 404) {
			r = kiln_error_make(err, 0,
					    "%s does not speak the registry API v2 (GET %s: 404)",
					    h->base, url);
		} else if (rs.status >= 400) {
			cleanup_free char *why = http_error_text(&rs);
			r = kiln_error_make(err, 0, "GET %s: %s", url, why);
		}
		http_resp_release(&rs);
		if (r == 0)
			h->pinged = true;
		return r;
	}
}

struct reg_host *client_host(struct registry_client *c, const char *domain, struct kiln_error **err)
{
	struct reg_host *h = host_get(c, domain);
	if (!h->pinged && host_ping(c, h, err) < 0)
		return NULL;
	return h;
}

int host_request(struct registry_client *c, struct reg_host *h, const struct http_req *rq,
		 struct http_resp *rs, struct kiln_error **err)
{
	bool reauthed = false;
	for (int attempt = 1;; attempt++) {
		http_resp_release(rs);
		char *auth = NULL;
		if (host_auth_line(c, h, rq->scope, &auth, err) < 0)
			return -1;
		http_perform(c, rq, h->insecure, auth, rs);
		bool sent_auth = auth != NULL;
		secret_free(auth);
		if (rs->code == CURLE_OK && rs->status == 401 && rq->scope && !reauthed) {
			reauthed = true;
			attempt--;
			enum auth_scheme before = h->scheme;
			if (host_take_challenge(h, rs->www_auth, err) < 0)
				return -1;
			if (h->scheme == AUTH_BASIC) {
				host_load_creds(c, h);
				if (!h->has_creds)
					return kiln_error_make(
					    err, 0,
					    "%s requires a login (no credentials for it in "
					    "$REGISTRY_AUTH_FILE or the docker config)",
					    h->domain);
				if (before == AUTH_BASIC && sent_auth)
					return kiln_error_make(
					    err, 0, "%s rejected the password of user %s",
					    h->domain, h->creds.username);
			} else {
				token_drop(h, rq->scope);
			}
			continue;
		}
		if (retry_wait(c, rq, rs, attempt, true))
			continue;
		if (rs->too_big)
			return kiln_error_make(err, 0, "%s %s: response larger than %zu bytes",
					       rq->method, rq->url, rq->max_body);
		if (rs->code != CURLE_OK)
			return transport_error(rq, rs, attempt, err);
		if (rs->status == 401 && rq->scope)
			return kiln_error_make(err, 0, "%s %s: unauthorized (HTTP 401)%s",
					       rq->method, rq->url,
					       h->has_creds ? "" : " and no credentials found");
		if (attempt > 1 && status_retryable(rs->status)) {
			cleanup_free char *why = http_error_text(rs);
			return kiln_error_make(err, 0, "%s %s: %s (after %d attempts)", rq->method,
					       rq->url, why, attempt);
		}
		return 0;
	}
}

char *url_resolve(const char *base_url, const char *location)
{
	if (strstr(location, "://"))
		return xstrdup(location);
	const char *p = strstr(base_url, "://");
	p = p ? p + 3 : base_url;
	size_t origin = (size_t)(p - base_url) + strcspn(p, "/?#");
	if (location[0] == '/')
		return xasprintf("%.*s%s", (int)origin, base_url, location);
	/* Relative to the directory of BASE_URL. */
	const char *q = base_url + origin;
	size_t plen = strcspn(q, "?#");
	size_t dir = plen;
	while (dir > 0 && q[dir - 1] != '/')
		dir--;
	return xasprintf("%.*s%.*s%s", (int)origin, base_url, (int)dir, q, location);
}

/* ---- manifests ---- */

struct manifest_doc {
	char *data; /* exact bytes */
	size_t len;
	char digest[DIGEST_STRLEN];
	const char *media_type; /* borrowed from json or static */
	json_t *json;
};

static void manifest_doc_release(struct manifest_doc *m)
{
	free(m->data);
	if (m->json)
		json_decref(m->json);
	memset(m, 0, sizeof *m);
}

/* Parses M->data and sets media_type; WHAT names it in errors. */
static int manifest_doc_parse(struct manifest_doc *m, const char *content_type, const char *what,
			      struct kiln_error **err)
{
	m->json = oci_json_parse(m->data, m->len, what, err);
	if (m->json == NULL)
		return -1;
	if (json_integer_value(json_object_get(m->json, "schemaVersion")) == 1 ||
	    (content_type && strstr(content_type, "distribution.manifest.v1")))
		return kiln_error_make(err, 0, "%s: Docker schema 1 manifests are not supported",
				       what);
	m->media_type = oci_document_media_type(m->json);
	if (m->media_type == NULL && content_type)
		m->media_type = content_type;
	if (m->media_type == NULL ||
	    !(oci_is_index(m->media_type) || oci_is_manifest(m->media_type)))
		return kiln_error_make(err, 0, "%s: unsupported media type %s", what,
				       m->media_type ? m->media_type : "(none)");
	/* Keep a stable copy: CONTENT_TYPE belongs to the caller. */
	if (m->media_type == content_type) {
		const char *known[] = {OCI_MEDIA_INDEX, OCI_MEDIA_MANIFEST,
				       DOCKER_MEDIA_MANIFEST_LIST, DOCKER_MEDIA_MANIFEST};
		for (size_t i = 0; i < ARRAY_SIZE(known); i++)
			if (str_has_prefix(content_type, known[i]))
				m->media_type = known[i];
	}
	return 0;
}

/* Reads a manifest the store already holds (digest-checked). */
static int manifest_from_store(struct store *s, const char *digest, struct manifest_doc *m,
			       struct kiln_error **err)
{
	memset(m, 0, sizeof *m);
	m->data = store_blob_read(s, digest, OCI_MANIFEST_MAX, &m->len, err);
	if (m->data == NULL)
		return -1;
	snprintf(m->digest, sizeof m->digest, "%s", digest);
	if (manifest_doc_parse(m, NULL, digest, err) < 0) {
		manifest_doc_release(m);
		return -1;
	}
	return 0;
}

static char *repo_scope(const char *path, const char *actions)
{
	return xasprintf("repository:%s:%s", path, actions);
}

/* GETs manifest REFERENCE (tag or digest) of repository PATH on H once;
 * *MISMATCH tells that the bytes did not hash as they should (worth
 * another try: they may have been damaged on the way). */
static int manifest_fetch_once(struct registry_client *c, struct reg_host *h, const char *path,
			       const char *reference, struct manifest_doc *m, bool *mismatch,
			       struct kiln_error **err)
{
	*mismatch = false;
	memset(m, 0, sizeof *m);
	cleanup_free char *url = xasprintf("%s/v2/%s/manifests/%s", h->base, path, reference);
	cleanup_free char *scope = repo_scope(path, "pull");
	struct http_req rq = {.method = "GET",
			      .url = url,
			      .accept = OCI_MANIFEST_ACCEPT,
			      .scope = scope,
			      .fd = -1,
			      .max_body = OCI_MANIFEST_MAX,
			      .retry = true,
			      .follow = true};
	struct http_resp rs = {0};
	if (host_request(c, h, &rq, &rs, err) < 0) {
		http_resp_release(&rs);
		if (*err && strstr((*err)->msg, "response larger"))
			return kiln_error_make(err, 0, "manifest %s: larger than %zu bytes",
					       reference, OCI_MANIFEST_MAX);
		return -1;
	}
	if (rs.status != 200) {
		cleanup_free char *why = http_error_text(&rs);
		long status = rs.status;
		http_resp_release(&rs);
		if (status == 404)
			return kiln_error_make(err, 0, "manifest %s: not found: %s", reference,
					       why);
		return kiln_error_make(err, 0, "manifest %s: %s", reference, why);
	}
	m->len = rs.body.len;
	m->data = strbuf_detach(&rs.body, NULL);
	sha256_digest(m->data, m->len, m->digest);
	int r = 0;
	if (str_has_prefix(reference, "sha256:")) {
		*mismatch = strcmp(m->digest, reference) != 0;
		if (*mismatch)
			r = kiln_error_make(err, 0, "manifest %s: digest mismatch (got %s)",
					    reference, m->digest);
	} else if (rs.digest && digest_is_valid(rs.digest) && strcmp(rs.digest, m->digest) != 0) {
		*mismatch = true;
		r = kiln_error_make(
		    err, 0, "manifest %s: the registry says %s but the content hashes to %s",
		    reference, rs.digest, m->digest);
	}
	if (r == 0)
		r = manifest_doc_parse(m, rs.content_type, reference, err);
	http_resp_release(&rs);
	if (r < 0)
		manifest_doc_release(m);
	return r;
}

/* manifest_fetch_once, tried again (with backoff) when the bytes arrived damaged. */
static int manifest_fetch(struct registry_client *c, struct reg_host *h, const char *path,
			  const char *reference, struct manifest_doc *m, struct kiln_error **err)
{
	for (int attempt = 1;; attempt++) {
		bool mismatch;
		if (manifest_fetch_once(c, h, path, reference, m, &mismatch, err) == 0)
			return 0;
		if (!mismatch || attempt >= c->o->max_attempts) {
			if (mismatch && attempt > 1) {
				cleanup_free char *msg = xstrdup((*err)->msg);
				kiln_error_make(err, 0, "%s (after %d attempts)", msg, attempt);
			}
			return -1;
		}
		int64_t d = backoff_ms(c, attempt, -1);
		log_verbose("%s; retrying in %.1fs", (*err)->msg, (double)d / 1000);
		kiln_error_release(err);
		sleep_ms(d);
	}
}

struct platform {
	char *os, *arch, *variant;
};

static void platform_release(struct platform *p)
{
	free(p->os);
	free(p->arch);
	free(p->variant);
}

static void platform_from_options(const struct registry_options *o, struct platform *p)
{
	char *os = NULL;
	platform_split(o->arch ? o->arch : registry_host_arch(), &os, &p->arch, &p->variant);
	p->os = xstrdup(o->os ? o->os : os ? os : "linux");
	free(os);
}

/* Picks the descriptor for P from index JSON; borrowed from INDEX. */
static int index_select(json_t *index, const struct platform *p, struct oci_descriptor *out,
			struct kiln_error **err)
{
	json_t *ms = json_object_get(index, "manifests");
	if (!json_is_array(ms))
		return kiln_error_make(err, 0, "index without a manifests array");
	struct strbuf have = STRBUF_INIT;
	size_t i;
	json_t *v;
	json_array_foreach(ms, i, v)
	{
		struct oci_descriptor d;
		if (oci_descriptor_parse(v, &d, err) < 0) {
			strbuf_release(&have);
			return kiln_error_wrap(err, "index manifests[%zu]", i);
		}
		if (platform_match(p->os, p->arch, p->variant, d.os, d.architecture, d.variant)) {
			*out = d;
			strbuf_release(&have);
			return 0;
		}
		if (d.os && d.architecture)
			strbuf_printf(&have, "%s%s/%s%s%s", have.len ? ", " : "", d.os,
				      d.architecture, d.variant ? "/" : "",
				      d.variant ? d.variant : "");
	}
	int r = kiln_error_make(err, 0, "no manifest for %s/%s%s%s in the index (it has: %s)",
				p->os, p->arch, p->variant ? "/" : "", p->variant ? p->variant : "",
				have.len ? have.buf : "no platforms");
	strbuf_release(&have);
	return r;
}

/* One blob of an image: config or layer. */
struct blob_ref {
	char digest[DIGEST_STRLEN];
	int64_t size;
	char label[48];
};

/* The config and layers of manifest JSON M (checked). Caller frees *OUT. */
static int manifest_blobs(json_t *m, struct blob_ref **out, size_t *n, struct kiln_error **err)
{
	*out = NULL;
	*n = 0;
	struct oci_descriptor d;
	json_t *cfg = json_object_get(m, "config");
	if (cfg == NULL)
		return kiln_error_make(err, 0, "manifest without a config");
	if (oci_descriptor_parse(cfg, &d, err) < 0)
		return kiln_error_wrap(err, "manifest config");
	if ((uint64_t)d.size > OCI_CONFIG_MAX)
		return kiln_error_make(err, 0, "config %s: %lld bytes is more than the %zu allowed",
				       d.digest, (long long)d.size, OCI_CONFIG_MAX);
	json_t *layers = json_object_get(m, "layers");
	if (layers && !json_is_array(layers))
		return kiln_error_make(err, 0, "manifest layers is not an array");
	size_t nl = json_array_size(layers);
	struct blob_ref *b = xcalloc(nl + 1, sizeof *b);
	snprintf(b[0].digest, sizeof b[0].digest, "%s", d.digest);
	b[0].size = d.size;
	snprintf(b[0].label, sizeof b[0].label, "config");
	for (size_t i = 0; i < nl; i++) {
		if (oci_descriptor_parse(json_array_get(layers, i), &d, err) < 0) {
			free(b);
			return kiln_error_wrap(err, "manifest layers[%zu]", i);
		}
		if (oci_layer_compression(d.media_type) == OCI_COMPRESSION_UNKNOWN)
			log_verbose("layer %s: media type %s is not one kiln unpacks", d.digest,
				    d.media_type);
		snprintf(b[i + 1].digest, sizeof b[i + 1].digest, "%s", d.digest);
		b[i + 1].size = d.size;
		snprintf(b[i + 1].label, sizeof b[i + 1].label, "layer %zu/%zu", i + 1, nl);
	}
	*out = b;
	*n = nl + 1;
	return 0;
}

/* ---- parallel blob downloads (curl multi) ---- */

enum fetch_state { FETCH_WAIT, FETCH_ACTIVE, FETCH_DONE };

struct fetch {
	struct pull *p;
	struct reg_host *h; /* where, and with which auth, this blob comes from */
	const char *path;
	const char *scope;
	const char *owner; /* the image name, for errors */
	struct blob_ref b;
	struct blob_writer *w;
	CURL *e;
	struct curl_slist *hdrs;
	enum fetch_state state;
	int attempts;
	int64_t not_before;
	bool checked, overflow, bad_range, reauthed;
	long status;
	uint64_t start_size;
	struct strbuf errbody;
	struct kiln_error *werr;
	char range[32];
	char errbuf[CURL_ERROR_SIZE];
};

struct pull {
	struct registry_client *c;
	struct store *s;
	CURLM *multi;
	struct fetch *f;
	size_t n;
	int64_t last_draw;
	int drawn;
	uint64_t fetched;
};

static size_t fetch_header(char *buf, size_t size, size_t nitems, void *ud)
{
	struct fetch *f = ud;
	size_t len = size * nitems;
	if (len >= 5 && memcmp(buf, "HTTP/", 5) == 0) {
		/* A new response (after a redirect): judge it afresh. */
		f->checked = false;
		f->status = 0;
		strbuf_reset(&f->errbody);
	}
	return len;
}

static size_t fetch_write(char *ptr, size_t size, size_t nmemb, void *ud)
{
	struct fetch *f = ud;
	size_t n = size * nmemb;
	if (!f->checked) {
		f->checked = true;
		curl_easy_getinfo(f->e, CURLINFO_RESPONSE_CODE, &f->status);
		if (f->status == 206) {
			cleanup_free char *cr = easy_header(f->e, "Content-Range");
			uint64_t a = 0, z = 0;
			if (content_range_parse(cr, &a, &z) < 0 || a != blob_writer_size(f->w)) {
				f->bad_range = true;
				return 0;
			}
		} else if (f->status == 200 && blob_writer_size(f->w) > 0) {
			/* The server ignored Range: start over. */
			log_verbose("blob %s: the registry ignored the range; starting over",
				    f->b.digest);
			if (blob_writer_truncate(f->w, 0, &f->werr) < 0)
				return 0;
		}
	}
	if (f->status == 200 || f->status == 206) {
		if (blob_writer_size(f->w) + n > (uint64_t)f->b.size) {
			f->overflow = true;
			return 0;
		}
		if (blob_writer_write(f->w, ptr, n, &f->werr) < 0)
			return 0;
		f->p->fetched += n;
		return n;
	}
	if (f->errbody.len < 4096)
		strbuf_append(&f->errbody, ptr, n < 4096 ? n : 4096);
	return n;
}

static void fetch_release_handle(struct pull *p, struct fetch *f)
{
	if (f->e) {
		curl_multi_remove_handle(p->multi, f->e);
		curl_easy_cleanup(f->e);
		f->e = NULL;
	}
	curl_slist_free_all(f->hdrs);
	f->hdrs = NULL;
}

/* A writer for F: resume a partial download of an earlier run when the
 * store has one. */
static int fetch_writer(struct pull *p, struct fetch *f, struct kiln_error **err)
{
	if (f->w)
		return 0;
	cleanup_error struct kiln_error *e = NULL;
	f->w = store_blob_resume(p->s, f->b.digest, &e);
	if (f->w == NULL) {
		if (e == NULL || e->status != EBUSY) {
			*err = steal_pointer(&e);
			return -1;
		}
		/* Another process resumes this digest: download our own copy. */
		f->w = store_blob_create(p->s, err);
		if (f->w == NULL)
			return -1;
	}
	uint64_t have = blob_writer_size(f->w);
	if (have > (uint64_t)f->b.size && blob_writer_truncate(f->w, 0, err) < 0)
		return -1;
	if (have > 0 && have == (uint64_t)f->b.size) {
		struct blob_writer *w = steal_pointer(&f->w);
		cleanup_error struct kiln_error *ce = NULL;
		if (blob_writer_commit(w, f->b.digest, NULL, &ce) == 0) {
			f->state = FETCH_DONE;
			return 0;
		}
		log_verbose("blob %s: discarding a bad partial download (%s)", f->b.digest,
			    ce->msg);
		return fetch_writer(p, f, err);
	}
	if (have > 0)
		log_verbose("blob %s: resuming at byte %llu", f->b.digest,
			    (unsigned long long)have);
	return 0;
}

static int fetch_start(struct pull *p, struct fetch *f, struct kiln_error **err)
{
	if (fetch_writer(p, f, err) < 0)
		return -1;
	if (f->state == FETCH_DONE)
		return 0;
	if (f->b.size == 0) {
		struct blob_writer *w = steal_pointer(&f->w);
		if (blob_writer_commit(w, f->b.digest, NULL, err) < 0)
			return -1;
		f->state = FETCH_DONE;
		return 0;
	}
	cleanup_free char *url = xasprintf("%s/v2/%s/blobs/%s", f->h->base, f->path, f->b.digest);
	char *auth = NULL;
	if (host_auth_line(p->c, f->h, f->scope, &auth, err) < 0)
		return -1;
	f->e = curl_easy_init();
	if (f->e == NULL) {
		secret_free(auth);
		return kiln_error_make(err, 0, "libcurl: cannot create a handle");
	}
	easy_setup(p->c, f->e, url, f->h->insecure, f->errbuf);
	if (auth)
		f->hdrs = curl_slist_append(f->hdrs, auth);
	secret_free(auth);
	curl_easy_setopt(f->e, CURLOPT_HTTPHEADER, f->hdrs);
	curl_easy_setopt(f->e, CURLOPT_FOLLOWLOCATION, 1L);
	curl_easy_setopt(f->e, CURLOPT_WRITEFUNCTION, fetch_write);
	curl_easy_setopt(f->e, CURLOPT_WRITEDATA, f);
	curl_easy_setopt(f->e, CURLOPT_HEADERFUNCTION, fetch_header);
	curl_easy_setopt(f->e, CURLOPT_HEADERDATA, f);
	curl_easy_setopt(f->e, CURLOPT_PRIVATE, f);
	f->start_size = blob_writer_size(f->w);
	if (f->start_size > 0) {
		snprintf(f->range, sizeof f->range, "%llu-", (unsigned long long)f->start_size);
		curl_easy_setopt(f->e, CURLOPT_RANGE, f->range);
	}
	f->checked = f->overflow = f->bad_range = false;
	f->status = 0;
	strbuf_reset(&f->errbody);
	if (curl_multi_add_handle(p->multi, f->e) != CURLM_OK) {
		fetch_release_handle(p, f);
		return kiln_error_make(err, 0, "libcurl: cannot start a transfer");
	}
	f->state = FETCH_ACTIVE;
	log_debug("GET %s%s%s", url, f->start_size ? " range " : "", f->start_size ? f->range : "");
	return 0;
}

/* Schedules another attempt of F after a failure described by WHY (owned). */
static int fetch_again(struct pull *p, struct fetch *f, bool progressed, long retry_after,
		       char *why, struct kiln_error **err)
{
	cleanup_free char *reason = why;
	f->attempts = progressed ? 1 : f->attempts + 1;
	if (f->attempts >= p->c->o->max_attempts)
		return kiln_error_make(err, 0, "blob %s: %s (gave up after %d attempts)",
				       f->b.digest, reason, f->attempts);
	int64_t d = backoff_ms(p->c, f->attempts, retry_after);
	log_verbose("blob %s: %s; retrying in %.1fs", f->b.digest, reason, (double)d / 1000);
	f->not_before = now_ms() + d;
	f->state = FETCH_WAIT;
	return 0;
}

static int fetch_finish(struct pull *p, struct fetch *f, CURLcode code, struct kiln_error **err)
{
	long status = f->status;
	if (status == 0 && f->e)
		curl_easy_getinfo(f->e, CURLINFO_RESPONSE_CODE, &status);
	char *retry_after_s = f->e ? easy_header(f->e, "Retry-After") : NULL;
	char *www_auth = (f->e && status == 401) ? easy_www_auth(f->e) : NULL;
	long ra = retry_after_parse(retry_after_s, time(NULL));
	free(retry_after_s);
	const char *curl_why = f->errbuf[0] ? f->errbuf : curl_easy_strerror(code);
	if (code == CURLE_OPERATION_TIMEDOUT)
		curl_why = "transfer stalled (timed out)";
	else if (code == CURLE_PARTIAL_FILE)
		curl_why = "connection closed before the whole body arrived";
	cleanup_free char *why_copy = xstrdup(curl_why);
	fetch_release_handle(p, f);
	bool progressed = f->w && blob_writer_size(f->w) > f->start_size;
	if (f->werr) {
		free(www_auth);
		*err = steal_pointer(&f->werr);
		return kiln_error_wrap(err, "blob %s", f->b.digest);
	}
	if (f->overflow) {
		free(www_auth);
		if (blob_writer_truncate(f->w, 0, err) < 0)
			return -1;
		return fetch_again(p, f, false, -1,
				   xasprintf("the registry sent more than the %lld bytes the "
					     "manifest gives",
					     (long long)f->b.size),
				   err);
	}
	if (f->bad_range) {
		free(www_auth);
		if (blob_writer_truncate(f->w, 0, err) < 0)
			return -1;
		return fetch_again(p, f, false, -1,
				   xstrdup("the registry answered a range request with the "
					   "wrong range"),
				   err);
	}
	if (code == CURLE_OK && (status == 200 || status == 206)) {
		free(www_auth);
		uint64_t got = blob_writer_size(f->w);
		if (got != (uint64_t)f->b.size) {
			if (blob_writer_truncate(f->w, 0, err) < 0)
				return -1;
			return fetch_again(p, f, false, -1,
					   xasprintf("%llu bytes instead of the %lld the manifest "
						     "gives",
						     (unsigned long long)got, (long long)f->b.size),
					   err);
		}
		struct blob_writer *w = steal_pointer(&f->w);
		cleanup_error struct kiln_error *ce = NULL;
		if (blob_writer_commit(w, f->b.digest, NULL, &ce) < 0) {
			if (ce->status != 0) {
				*err = steal_pointer(&ce);
				return kiln_error_wrap(err, "blob %s", f->b.digest);
			}
			return fetch_again(p, f, false, -1, xstrdup(ce->msg), err);
		}
		f->state = FETCH_DONE;
		return 0;
	}
	if (code == CURLE_OK) {
		if (status == 401 && !f->reauthed) {
			f->reauthed = true;
			int r = host_take_challenge(f->h, www_auth, err);
			free(www_auth);
			if (r < 0)
				return -1;
			token_drop(f->h, f->scope);
			f->state = FETCH_WAIT;
			f->not_before = 0;
			return 0;
		}
		free(www_auth);
		struct http_resp tmp = {.status = status, .body = f->errbody};
		cleanup_free char *why = http_error_text(&tmp);
		if (status_retryable(status))
			return fetch_again(p, f, false, ra, steal_pointer(&why), err);
		return kiln_error_make(err, 0, "blob %s: %s", f->b.digest, why);
	}
	free(www_auth);
	if (curl_code_retryable(code))
		return fetch_again(p, f, progressed, -1, steal_pointer(&why_copy), err);
	return kiln_error_make(err, 0, "blob %s: %s", f->b.digest, why_copy);
}

static void human_size(uint64_t n, char *buf, size_t len)
{
	if (n >= 1000000)
		snprintf(buf, len, "%.1f MB", (double)n / 1e6);
	else if (n >= 1000)
		snprintf(buf, len, "%.1f kB", (double)n / 1e3);
	else
		snprintf(buf, len, "%llu B", (unsigned long long)n);
}

static void progress_draw(struct pull *p, bool last)
{
	if (!p->c->bars)
		return;
	int64_t now = now_ms();
	if (!last && now - p->last_draw < 150)
		return;
	p->last_draw = now;
	struct strbuf sb = STRBUF_INIT;
	if (p->drawn > 0)
		strbuf_printf(&sb, "\033[%dA", p->drawn);
	for (size_t i = 0; i < p->n; i++) {
		struct fetch *f = &p->f[i];
		uint64_t have = f->state == FETCH_DONE ? (uint64_t)f->b.size
				: f->w		       ? blob_writer_size(f->w)
						       : 0;
		int width = 30;
		int fill = f->b.size > 0 ? (int)((double)have * width / (double)f->b.size) : width;
		char a[32], b[32];
		human_size(have, a, sizeof a);
		human_size((uint64_t)f->b.size, b, sizeof b);
		strbuf_printf(&sb, "\r\033[K%.12s %-18s [", f->b.digest + 7, f->b.label);
		for (int k = 0; k < width; k++)
			strbuf_putc(&sb, k < fill ? '=' : ' ');
		strbuf_printf(&sb, "] %s / %s%s\n", a, b,
			      f->state == FETCH_DONE			  ? " done"
			      : f->state == FETCH_WAIT && f->attempts > 0 ? " retrying"
									  : "");
	}
	fputs(sb.buf, stderr);
	fflush(stderr);
	p->drawn = (int)p->n;
	strbuf_release(&sb);
}

static int pull_blobs(struct pull *p, struct kiln_error **err)
{
	p->multi = curl_multi_init();
	if (p->multi == NULL)
		return kiln_error_make(err, 0, "libcurl: cannot create a multi handle");
	size_t jobs = p->c->o->jobs > 0 ? (size_t)p->c->o->jobs : DEFAULT_JOBS;
	int r = 0;
	for (;;) {
		size_t active = 0, waiting = 0;
		int64_t now = now_ms(), next = INT64_MAX;
		for (size_t i = 0; i < p->n; i++)
			active += p->f[i].state == FETCH_ACTIVE;
		for (size_t i = 0; i < p->n; i++) {
			struct fetch *f = &p->f[i];
			if (f->state != FETCH_WAIT)
				continue;
			if (active < jobs && f->not_before <= now) {
				if (fetch_start(p, f, err) < 0) {
					kiln_error_wrap(err, "pull %s", f->owner);
					r = -1;
					goto out;
				}
				active += f->state == FETCH_ACTIVE;
			} else {
				waiting++;
				if (f->not_before < next)
					next = f->not_before;
			}
		}
		if (active == 0 && waiting == 0)
			break;
		int running = 0;
		curl_multi_perform(p->multi, &running);
		CURLMsg *m;
		int q;
		bool finished = false;
		while ((m = curl_multi_info_read(p->multi, &q)) != NULL) {
			if (m->msg != CURLMSG_DONE)
				continue;
			finished = true;
			struct fetch *f = NULL;
			curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&f);
			CURLcode code = m->data.result;
			if (fetch_finish(p, f, code, err) < 0) {
				kiln_error_wrap(err, "pull %s", f->owner);
				r = -1;
				goto out;
			}
		}
		if (finished)
			continue; /* start the next transfers (or stop) without waiting */
		int timeout = 100;
		if (active == 0 && next != INT64_MAX) {
			int64_t w = next - now_ms();
			timeout = w < 0 ? 0 : w > 1000 ? 1000 : (int)w;
		}
		curl_multi_poll(p->multi, NULL, 0, timeout, NULL);
		progress_draw(p, false);
	}
	progress_draw(p, true);
out:
	for (size_t i = 0; i < p->n; i++) {
		struct fetch *f = &p->f[i];
		fetch_release_handle(p, f);
		if (f->w) {
			/* Only failures get here: the partial download goes. */
			blob_writer_abort(f->w);
			f->w = NULL;
		}
		strbuf_release(&f->errbody);
		kiln_error_release(&f->werr);
	}
	curl_multi_cleanup(p->multi);
	p->multi = NULL;
	return r;
}

/* ---- pull ---- */

/* Stores a manifest document when the store lacks it. */
static int manifest_store(struct store *s, const struct manifest_doc *m, struct kiln_error **err)
{
	if (store_has_blob(s, m->digest))
		return 0;
	char d[DIGEST_STRLEN];
	if (store_put_blob(s, m->data, m->len, d, err) < 0)
		return -1;
	if (strcmp(d, m->digest) != 0)
		return kiln_error_make(err, 0, "manifest %s: stored as %s", m->digest, d);
	return 0;
}

/* The manifest DIGEST of PATH: from the store when there, else fetched. */
static int manifest_get(struct registry_client *c, struct reg_host *h, struct store *s,
			const char *path, const char *digest, struct manifest_doc *m,
			struct kiln_error **err)
{
	if (store_has_blob(s, digest)) {
		cleanup_error struct kiln_error *e = NULL;
		if (manifest_from_store(s, digest, m, &e) == 0)
			return 0;
		log_verbose("manifest %s in the store is unusable (%s); fetching it", digest,
			    e->msg);
	}
	if (manifest_fetch(c, h, path, digest, m, err) < 0)
		return -1;
	return manifest_store(s, m, err);
}

/* One image of a pull: its manifests are fetched and stored first, then the
 * blobs of every image are downloaded together, then each is tagged. */
struct pull_item {
	struct image_ref ref;
	char *name;
	struct reg_host *h;
	char *scope;
	struct manifest_doc root, child;
	struct blob_ref *blobs;
	size_t nblobs;
	size_t nfetch; /* blobs this image added to the download */
	uint64_t bytes;
	struct kiln_error *err;
};

static void pull_item_release(struct pull_item *it)
{
	ref_release(&it->ref);
	free(it->name);
	free(it->scope);
	manifest_doc_release(&it->root);
	manifest_doc_release(&it->child);
	free(it->blobs);
	kiln_error_release(&it->err);
}

/* Fetches and stores the root and platform manifests of IT; lists its blobs. */
static int pull_prepare(struct registry_client *c, struct store *s, struct pull_item *it,
			struct kiln_error **err)
{
	const struct image_ref *ref = &it->ref;
	it->h = client_host(c, ref->domain, err);
	if (it->h == NULL)
		return -1;
	struct reg_host *h = it->h;
	if (ref->digest) {
		if (manifest_get(c, h, s, ref->path, ref->digest, &it->root, err) < 0)
			return -1;
	} else {
		if (manifest_fetch(c, h, ref->path, ref->tag, &it->root, err) < 0)
			return -1;
		if (manifest_store(s, &it->root, err) < 0)
			return -1;
	}
	struct manifest_doc *m = &it->root;
	if (oci_is_index(it->root.media_type)) {
		struct platform want = {c->want_os, c->want_arch, c->want_variant};
		struct oci_descriptor d;
		if (index_select(it->root.json, &want, &d, err) < 0)
			return -1;
		cleanup_free char *cd = xstrdup(d.digest);
		if (manifest_get(c, h, s, ref->path, cd, &it->child, err) < 0)
			return -1;
		if (!oci_is_manifest(it->child.media_type))
			return kiln_error_make(err, 0,
					       "%s: an index inside an index is not supported", cd);
		m = &it->child;
	}
	if (manifest_blobs(m->json, &it->blobs, &it->nblobs, err) < 0)
		return kiln_error_wrap(err, "manifest %s", m->digest);
	it->scope = repo_scope(ref->path, "pull");
	return 0;
}

static int pull_tag(struct registry_client *c, struct store *s, struct pull_item *it,
		    struct kiln_error **err)
{
	for (size_t i = 0; i < it->nblobs; i++)
		if (!store_has_blob(s, it->blobs[i].digest))
			return kiln_error_make(err, 0, "blob %s was not stored",
					       it->blobs[i].digest);
	if (store_tag(s, it->name, it->root.digest, it->root.media_type, (int64_t)it->root.len,
		      err) < 0)
		return -1;
	if (c->chatty) {
		char sz[32];
		human_size(it->bytes, sz, sizeof sz);
		if (it->nfetch == 0)
			log_info("%s: up to date (%s)", it->name, it->root.digest);
		else
			log_info("pulled %s (%s): %zu blob%s, %s", it->name, it->root.digest,
				 it->nfetch, it->nfetch == 1 ? "" : "s", sz);
	}
	return 0;
}

int registry_pull_many(struct registry_client *c, struct store *s, char *const *refs, size_t n,
		       char (*digests_out)[DIGEST_STRLEN],
		       void (*on_error)(const char *ref, struct kiln_error **err, void *arg),
		       void *arg)
{
	struct pull_item *items = xcalloc(n ? n : 1, sizeof *items);
	struct pull p = {.c = c, .s = s};
	size_t cap = 0;
	for (size_t i = 0; i < n; i++) {
		struct pull_item *it = &items[i];
		if (ref_parse(refs[i], &it->ref, &it->err) < 0)
			continue;
		it->name = ref_string(&it->ref);
		if (pull_prepare(c, s, it, &it->err) < 0) {
			kiln_error_wrap(&it->err, "pull %s", it->name);
			continue;
		}
		p.f = xrealloc(p.f, (cap += it->nblobs) * sizeof *p.f);
		for (size_t b = 0; b < it->nblobs; b++) {
			bool dup = false;
			for (size_t k = 0; k < p.n && !dup; k++)
				dup = strcmp(p.f[k].b.digest, it->blobs[b].digest) == 0;
			if (dup || store_has_blob(s, it->blobs[b].digest))
				continue;
			struct fetch *f = &p.f[p.n++];
			memset(f, 0, sizeof *f);
			f->p = &p;
			f->h = it->h;
			f->path = it->ref.path;
			f->scope = it->scope;
			f->owner = it->name;
			f->b = it->blobs[b];
			if (n > 1) {
				/* Several images share the bars: say whose blob it is. */
				const char *base = strrchr(it->ref.path, '/');
				base = base ? base + 1 : it->ref.path;
				snprintf(f->b.label, sizeof f->b.label, "%.20s %.26s", base,
					 it->blobs[b].label);
			}
			f->state = FETCH_WAIT;
			it->nfetch++;
			it->bytes += (uint64_t)it->blobs[b].size;
		}
	}
	struct kiln_error *blob_err = NULL;
	if (p.n > 0 && pull_blobs(&p, &blob_err) < 0) {
		/* Images whose blobs all arrived are still tagged below. */
		for (size_t i = 0; i < n; i++) {
			if (items[i].err || items[i].name == NULL)
				continue;
			for (size_t b = 0; b < items[i].nblobs && !items[i].err; b++)
				if (!store_has_blob(s, items[i].blobs[b].digest))
					kiln_error_make(&items[i].err, 0, "%s", blob_err->msg);
		}
	}
	kiln_error_release(&blob_err);
	int failed = 0;
	for (size_t i = 0; i < n; i++) {
		struct pull_item *it = &items[i];
		if (it->err == NULL && pull_tag(c, s, it, &it->err) < 0)
			kiln_error_wrap(&it->err, "pull %s", it->name);
		if (it->err) {
			failed++;
			if (on_error)
				on_error(refs[i], &it->err, arg);
		} else if (digests_out) {
			snprintf(digests_out[i], DIGEST_STRLEN, "%s", it->root.digest);
		}
		pull_item_release(it);
	}
	free(p.f);
	free(items);
	return failed;
}

static void keep_first_error(const char *ref, struct kiln_error **e, void *arg)
{
	(void)ref;
	struct kiln_error **dst = arg;
	if (*dst == NULL)
		*dst = steal_pointer(e);
}

int registry_pull(struct registry_client *c, struct store *s, const char *refstr,
		  char root_out[DIGEST_STRLEN], struct kiln_error **err)
{
	char digest[1][DIGEST_STRLEN];
	char *refs[1] = {(char *)refstr};
	struct kiln_error *e = NULL;
	if (registry_pull_many(c, s, refs, 1, digest, keep_first_error, &e) > 0) {
		*err = e;
		return -1;
	}
	if (root_out)
		snprintf(root_out, DIGEST_STRLEN, "%s", digest[0]);
	return 0;
}

int registry_head_manifest(struct registry_client *c, const char *refstr,
			   char digest_out[DIGEST_STRLEN], struct kiln_error **err)
{
	struct image_ref ref = {0};
	if (ref_parse(refstr, &ref, err) < 0)
		return -1;
	int r = -1;
	const char *reference = ref.digest ? ref.digest : ref.tag;
	struct reg_host *h = client_host(c, ref.domain, err);
	if (h != NULL) {
		cleanup_free char *url =
		    xasprintf("%s/v2/%s/manifests/%s", h->base, ref.path, reference);
		cleanup_free char *scope = repo_scope(ref.path, "pull");
		struct http_req rq = {.method = "HEAD",
				      .url = url,
				      .accept = OCI_MANIFEST_ACCEPT,
				      .scope = scope,
				      .fd = -1,
				      .retry = true,
				      .follow = true};
		struct http_resp rs = {0};
		if (host_request(c, h, &rq, &rs, err) == 0) {
			if (rs.status == 200 && rs.digest && digest_is_valid(rs.digest)) {
				snprintf(digest_out, DIGEST_STRLEN, "%s", rs.digest);
				r = 0;
			} else if (rs.status == 404) {
				kiln_error_make(err, 0, "manifest %s: not found (HTTP 404)",
						reference);
			} else {
				/* No usable digest header: hash the manifest itself. */
				struct manifest_doc m;
				if (manifest_fetch(c, h, ref.path, reference, &m, err) == 0) {
					snprintf(digest_out, DIGEST_STRLEN, "%s", m.digest);
					manifest_doc_release(&m);
					r = 0;
				}
			}
		}
		http_resp_release(&rs);
	}
	if (r < 0) {
		cleanup_free char *name = ref_string(&ref);
		kiln_error_wrap(err, "%s", name);
	}
	ref_release(&ref);
	return r;
}

/* ---- resolution for builds ---- */

/* True when the store holds everything the platform P needs of ROOT. */
static bool store_image_complete(struct store *s, const char *root, const struct platform *p)
{
	struct manifest_doc r = {0}, m = {0};
	struct blob_ref *blobs = NULL;
	size_t n = 0;
	bool ok = false;
	cleanup_error struct kiln_error *e = NULL;
	if (manifest_from_store(s, root, &r, &e) < 0)
		goto out;
	struct manifest_doc *man = &r;
	if (oci_is_index(r.media_type)) {
		struct oci_descriptor d;
		if (index_select(r.json, p, &d, &e) < 0 || !store_has_blob(s, d.digest))
			goto out;
		cleanup_free char *cd = xstrdup(d.digest);
		if (manifest_from_store(s, cd, &m, &e) < 0 || !oci_is_manifest(m.media_type))
			goto out;
		man = &m;
	}
	if (manifest_blobs(man->json, &blobs, &n, &e) < 0)
		goto out;
	ok = true;
	for (size_t i = 0; i < n && ok; i++)
		ok = store_has_blob(s, blobs[i].digest);
out:
	free(blobs);
	manifest_doc_release(&r);
	manifest_doc_release(&m);
	return ok;
}

int image_resolve_with(struct registry_client *c, struct store *s, const char *refstr,
		       const struct registry_options *o, bool force_pull,
		       char digest_out[DIGEST_STRLEN], struct kiln_error **err)
{
	struct image_ref ref = {0};
	if (ref_parse(refstr, &ref, err) < 0)
		return -1;
	cleanup_free char *name = ref_string(&ref);
	struct platform plat = {0};
	platform_from_options(o, &plat);
	cleanup_registry_client struct registry_client *own = NULL;
	int r = -1;
	char have[DIGEST_STRLEN] = "";
	int found = store_lookup(s, name, have, err);
	if (found < 0)
		goto out;
	if (found == 0 && ref.digest && store_has_blob(s, ref.digest)) {
		snprintf(have, sizeof have, "%s", ref.digest);
		found = 1;
	}
	if (found && ref.digest && strcmp(have, ref.digest) != 0)
		found = 0; /* the name points elsewhere: trust the digest asked for */
	if (found && store_image_complete(s, have, &plat)) {
		bool fresh = !force_pull || ref.digest != NULL;
		if (!fresh) {
			if (c == NULL)
				c = own = registry_client_new(o, err);
			if (c == NULL)
				goto out;
			char remote[DIGEST_STRLEN];
			if (registry_head_manifest(c, name, remote, err) < 0)
				goto out;
			fresh = strcmp(remote, have) == 0;
			if (!fresh)
				log_verbose("%s moved from %s to %s", name, have, remote);
		}
		if (fresh) {
			/* Make sure the name is in index.json (a digest found by content). */
			struct manifest_doc root;
			if (manifest_from_store(s, have, &root, err) < 0)
				goto out;
			int t = store_tag(s, name, have, root.media_type, (int64_t)root.len, err);
			manifest_doc_release(&root);
			if (t < 0)
				goto out;
			log_verbose("%s: %s (from the store)", name, have);
			snprintf(digest_out, DIGEST_STRLEN, "%s", have);
			r = 0;
			goto out;
		}
	}
	if (c == NULL)
		c = own = registry_client_new(o, err);
	if (c == NULL)
		goto out;
	if (registry_pull(c, s, name, digest_out, err) < 0)
		goto out;
	r = 0;
out:
	platform_release(&plat);
	ref_release(&ref);
	return r;
}

int image_resolve(struct store *s, const char *ref, const struct registry_options *o,
		  bool force_pull, char digest_out[DIGEST_STRLEN], struct kiln_error **err)
{
	return image_resolve_with(NULL, s, ref, o, force_pull, digest_out, err);
}
