package config

import "time"

// Admin configures the admin API (/admin/*).
type Admin struct {
	// Token is the bearer token the admin API requires (ADMIN_TOKEN), compared
	// in constant time; at least 16 characters. Empty disables the admin API:
	// /admin/* answers 404.
	Token string `yaml:"token"`
	// Listen serves the admin API on its own address (e.g. "127.0.0.1:9778")
	// instead of the main listener; a bare port is accepted. It must differ
	// from server.listen. Default: the main listener.
	Listen string `yaml:"listen"`
}

// Edge configures the checks every request passes before routing: who the
// client is, allow and deny lists, DDoS blocking, rate limits and connection
// caps.
type Edge struct {
	// Allow lists IPs and CIDRs that skip the other edge checks (deny list,
	// DDoS blocking, rate limits, in-flight caps and the per-IP connection cap;
	// the total connection cap still applies). Changed at run time through
	// POST/DELETE /admin/whitelist.
	Allow []string `yaml:"allow"`
	// Deny lists IPs and CIDRs that get 403. Changed at run time through
	// POST/DELETE /admin/blacklist.
	Deny []string `yaml:"deny"`
	// DDoS blocks clients that send too many requests per minute.
	DDoS DDoS `yaml:"ddos"`
	// RateLimit is the default per-client token bucket; routes may override it.
	RateLimit RateLimit `yaml:"rate_limit"`
	// Connections caps concurrent connections and requests.
	Connections ConnectionLimits `yaml:"connections"`
}

// DDoS configures threshold blocking per client IP.
type DDoS struct {
	// Disabled turns DDoS blocking off.
	Disabled bool `yaml:"disabled"`
	// Threshold is the number of requests per minute above which a client IP
	// is blocked (DDOS_THRESHOLD). Default 1000.
	Threshold int `yaml:"threshold"`
	// BlockDuration is how long a blocked IP gets 403 (BLOCK_DURATION).
	// Default 10m.
	BlockDuration time.Duration `yaml:"block_duration"`
}

// RateLimit configures a token bucket per client key.
type RateLimit struct {
	// Disabled turns the limit off (for a route: this route is not limited).
	Disabled bool `yaml:"disabled"`
	// RequestsPerSecond is the refill rate (MAX_REQUESTS_PER_SECOND).
	// Default 100.
	RequestsPerSecond float64 `yaml:"requests_per_second"`
	// Burst is the bucket size (MAX_BURST_SIZE). Default 200.
	Burst int `yaml:"burst"`
	// Key says what a bucket belongs to: "ip" (default), "api_key" (the API
	// key's name), "jwt_sub" (the token's subject) or "header:NAME". A request
	// without that identity falls back to its IP.
	Key string `yaml:"key"`
}

// ConnectionLimits cap concurrency. Zero means no cap.
type ConnectionLimits struct {
	// MaxConnections caps open client connections in total.
	MaxConnections int `yaml:"max_connections"`
	// MaxConnectionsPerIP caps open connections per client IP.
	MaxConnectionsPerIP int `yaml:"max_connections_per_ip"`
	// MaxInFlight caps requests being served at once in total (503 beyond).
	MaxInFlight int `yaml:"max_in_flight"`
	// MaxInFlightPerIP caps requests being served at once per client IP (429
	// beyond).
	MaxInFlightPerIP int `yaml:"max_in_flight_per_ip"`
}

// SecurityHeaders are set on every response, the gateway's own errors
// included. The value "off" leaves a header out (a route may relax the
// defaults that way).
type SecurityHeaders struct {
	// Disabled sends none of them.
	Disabled bool `yaml:"disabled"`
	// ContentTypeOptions is X-Content-Type-Options. Default "nosniff".
	ContentTypeOptions string `yaml:"content_type_options"`
	// FrameOptions is X-Frame-Options. Default "DENY".
	FrameOptions string `yaml:"frame_options"`
	// StrictTransportSecurity is Strict-Transport-Security. Default
	// "max-age=31536000; includeSubDomains".
	StrictTransportSecurity string `yaml:"strict_transport_security"`
	// ContentSecurityPolicy is Content-Security-Policy. Default
	// "default-src 'none'; frame-ancestors 'none'".
	ContentSecurityPolicy string `yaml:"content_security_policy"`
	// ReferrerPolicy is Referrer-Policy. Default "no-referrer".
	ReferrerPolicy string `yaml:"referrer_policy"`
}

// CORS is a cross-origin resource sharing policy.
type CORS struct {
	// Disabled turns CORS handling off (no CORS headers, preflights go to
	// the route like any OPTIONS request).
	Disabled bool `yaml:"disabled"`
	// AllowedOrigins are exact origins ("https://app.example.com"), "*", or
	// wildcard subdomains ("https://*.example.com") (CORS_ALLOWED_ORIGINS,
	// a JSON array). Scheme and host compare case-insensitively. Default
	// ["*"]; an explicit empty list allows no origin.
	AllowedOrigins []string `yaml:"allowed_origins"`
	// AllowedMethods answer preflights. Default GET, HEAD, POST, PUT, PATCH,
	// DELETE, OPTIONS.
	AllowedMethods []string `yaml:"allowed_methods"`
	// AllowedHeaders answer preflights. Default Authorization, Content-Type,
	// X-API-Key, X-Request-ID.
	AllowedHeaders []string `yaml:"allowed_headers"`
	// ExposedHeaders are readable by the browser. Default X-Request-ID.
	ExposedHeaders []string `yaml:"exposed_headers"`
	// AllowCredentials lets browsers send cookies and credentials; not
	// allowed with the origin "*".
	AllowCredentials bool `yaml:"allow_credentials"`
	// MaxAge is how long a browser may cache a preflight. Default 10m.
	MaxAge time.Duration `yaml:"max_age"`
}

// Auth configures the authentication methods routes can require.
type Auth struct {
	// JWT configures bearer tokens.
	JWT JWT `yaml:"jwt"`
	// APIKeys configures X-API-Key authentication.
	APIKeys APIKeys `yaml:"api_keys"`
	// PublicPaths never require authentication: a path equal to one of them
	// or below it (segment boundary). Default /health, /metrics, /login,
	// /register, /api/v1/public; an explicit empty list makes no path public.
	PublicPaths []string `yaml:"public_paths"`
}

// JWT configures bearer-token verification. Each key pins the algorithms it
// accepts, so "none" and HMAC-with-a-public-key confusion are rejected.
type JWT struct {
	// Secret enables HMAC tokens (JWT_SECRET). At least 32 bytes. Default:
	// none.
	Secret string `yaml:"secret"`
	// SecretAlgorithms are the HMAC algorithms accepted with Secret. Default
	// [HS256, HS384, HS512].
	SecretAlgorithms []string `yaml:"secret_algorithms"`
	// Keys are public keys from PEM files.
	Keys []JWTKey `yaml:"keys"`
	// JWKSURL is a JSON Web Key Set to fetch keys from; each key's
	// algorithm is pinned by its "alg" (or its type).
	JWKSURL string `yaml:"jwks_url"`
	// JWKSRefresh is how often the key set is refetched. Default 10m. An
	// unknown key id triggers an early refetch at most every 30s.
	JWKSRefresh time.Duration `yaml:"jwks_refresh"`
	// Issuer, when set, must equal the token's iss.
	Issuer string `yaml:"issuer"`
	// Audience, when set, must contain one of the token's aud values.
	Audience []string `yaml:"audience"`
	// Leeway tolerates clock skew on exp, nbf and iat. Default 30s, at most
	// 5m.
	Leeway time.Duration `yaml:"leeway"`
	// ClaimHeaders forwards claims upstream as headers (claim → header),
	// removing any such header the client sent. Default {sub: X-User-ID};
	// an explicit empty map forwards none. Host, Authorization, Cookie and
	// the API key header cannot carry a claim.
	ClaimHeaders map[string]string `yaml:"claim_headers"`
}

// JWTKey is a public key from a PEM file.
type JWTKey struct {
	// ID is the key id (kid) tokens name; empty matches tokens without kid.
	ID string `yaml:"id"`
	// File is the PEM file (PKIX public key or certificate).
	File string `yaml:"file"`
	// Algorithm is the one algorithm this key accepts: RS256/384/512,
	// PS256/384/512, ES256/384/512 or EdDSA.
	Algorithm string `yaml:"algorithm"`
}

// APIKeys configures API-key authentication. Keys are kept only as SHA-256
// hashes and compared in constant time.
type APIKeys struct {
	// Header carries the key. Default X-API-Key.
	Header string `yaml:"header"`
	// Keys are named keys. API_KEYS appends to them: comma-separated
	// "name:key" (or "key", named key-1, key-2, ... in order).
	Keys []APIKey `yaml:"keys"`
	// File holds one key per line: "name key" or "name sha256:HEX"; "#"
	// starts a comment. Re-read on reload.
	File string `yaml:"file"`
}

// APIKey is one named key. Exactly one of Key and SHA256 is set.
type APIKey struct {
	// Name identifies the caller in logs and rate-limit keys.
	Name string `yaml:"name"`
	// Key is the key itself (use ${VAR} to keep it out of the file).
	Key string `yaml:"key"`
	// SHA256 is the hex SHA-256 of the key, so the file holds no secret.
	SHA256 string `yaml:"sha256"`
}

// RouteAuth is a route's authentication, used when the route has
// require_auth.
type RouteAuth struct {
	// Methods the route accepts: jwt, api_key, forward. Default: every method
	// configured (jwt and api_key from auth, forward when Forward is set).
	Methods []string `yaml:"methods"`
	// Forward delegates the decision to an external service.
	Forward ForwardAuth `yaml:"forward"`
	// ForwardAuthorization passes the client's Authorization header upstream.
	// Default false: credentials stay at the gateway; claims go as headers.
	ForwardAuthorization bool `yaml:"forward_authorization"`
	// ForwardAPIKey passes the API key header upstream. Default false.
	ForwardAPIKey bool `yaml:"forward_api_key"`
}

// ForwardAuth asks an external service whether a request may pass: a 2xx
// answer allows it; anything else is returned to the client as is.
type ForwardAuth struct {
	// URL of the auth service, called with GET. It gets the client's headers
	// (less hop-by-hop ones and any X-Forwarded-*, X-Original-*, Forwarded or
	// X-Real-IP the client sent) and the gateway's X-Forwarded-Method/Uri/
	// Host/Proto/For, X-Original-Method/URL, X-Real-IP and X-Request-ID.
	URL string `yaml:"url"`
	// Timeout of one call. Default 5s (when URL is set). On timeout or an unreachable service
	// the request is refused with 503 (fail closed).
	Timeout time.Duration `yaml:"timeout"`
	// CopyHeaders are headers of the service's 2xx answer copied onto the
	// upstream request (e.g. X-User-ID), replacing any the client sent.
	CopyHeaders []string `yaml:"copy_headers"`
}
