package gateway

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/altair-gateway/altair/internal/cluster"
	"github.com/altair-gateway/altair/internal/config"
)

// redisCollector exports the Redis client's health at scrape time: nothing
// is counted on the request path but the client's own atomic counters.
type redisCollector struct{ cl *cluster.Client }

var (
	redisUpDesc = prometheus.NewDesc("redis_up",
		"1 while Redis answers and replicas share rate limits, DDoS blocks, lists and the response cache through it; 0 while each replica falls back to local state.",
		nil, nil)
	redisErrorsDesc = prometheus.NewDesc("redis_errors_total",
		"Failed Redis calls by op (ping, ratelimit, ddos, lists, pubsub, cache); each one marks Redis down until the next successful ping.",
		[]string{"op"}, nil)
	redisFallbacksDesc = prometheus.NewDesc("redis_fallbacks_total",
		"Decisions made with local state because Redis was down or failed, by op.",
		[]string{"op"}, nil)
)

func (c redisCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- redisUpDesc
	ch <- redisErrorsDesc
	ch <- redisFallbacksDesc
}

func (c redisCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.cl.Stats()
	up := 0.0
	if st.Up {
		up = 1
	}
	ch <- prometheus.MustNewConstMetric(redisUpDesc, prometheus.GaugeValue, up)
	for _, op := range cluster.Ops() {
		ch <- prometheus.MustNewConstMetric(redisErrorsDesc, prometheus.CounterValue, float64(st.Errors[op]), op)
		ch <- prometheus.MustNewConstMetric(redisFallbacksDesc, prometheus.CounterValue, float64(st.Fallbacks[op]), op)
	}
}

// redisProblems reports what in the redis section cannot be used, such as
// an unreadable CA file (validate catches the rest).
func redisProblems(cfg *config.Config) config.Problems {
	if !cfg.Redis.Enabled() {
		return nil
	}
	if _, err := cluster.TLSConfig(cfg.Redis.TLS); err != nil {
		return config.Problems{problem(cfg, "redis.tls.ca_file", "%v", err)}
	}
	return nil
}
