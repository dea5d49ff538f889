package agent

import (
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// metrics is one node's Prometheus registry, served at GET /v1/metrics.
// Each agent has its own registry (not the global one) so that several
// nodes can run in one process, as they do in tests. No metric carries key
// ids, key material or request contents: labels are operation names, AWS
// error codes and Raft states only.
type metrics struct {
	reg      *prometheus.Registry
	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec

	// The per-operation children of the success path, cached so that the
	// hot path does not hash label values on every request.
	mu sync.RWMutex
	ok map[string]opObservers
}

type opObservers struct {
	count   prometheus.Counter
	latency prometheus.Observer
}

func newMetrics(a *Agent) *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "keyraft_api_requests_total",
			Help: "KMS API requests answered, by operation and outcome (ok or the AWS error code).",
		}, []string{"operation", "outcome"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "keyraft_api_request_duration_seconds",
			Help:    "Time to answer a KMS API request, by operation.",
			Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"operation"}),
		ok: map[string]opObservers{},
	}
	m.reg.MustRegister(m.requests, m.latency,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		&clusterCollector{a: a})
	return m
}

// observe is the api.Config.Observe hook.
func (m *metrics) observe(op, errCode string, _ int, took time.Duration) {
	if op == "" {
		op = "unknown"
	}
	if errCode != "" {
		m.requests.WithLabelValues(op, errCode).Inc()
		m.latency.WithLabelValues(op).Observe(took.Seconds())
		return
	}
	m.mu.RLock()
	o, ok := m.ok[op]
	m.mu.RUnlock()
	if !ok {
		o = opObservers{count: m.requests.WithLabelValues(op, "ok"), latency: m.latency.WithLabelValues(op)}
		m.mu.Lock()
		m.ok[op] = o
		m.mu.Unlock()
	}
	o.count.Inc()
	o.latency.Observe(took.Seconds())
}

func (m *metrics) handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

// clusterCollector reads the node's status at scrape time.
type clusterCollector struct{ a *Agent }

var (
	descState        = prometheus.NewDesc("keyraft_raft_state", "1 for this node's current Raft state.", []string{"state"}, nil)
	descTerm         = prometheus.NewDesc("keyraft_raft_term", "Current Raft term.", nil, nil)
	descCommit       = prometheus.NewDesc("keyraft_raft_commit_index", "Raft commit index known to this node.", nil, nil)
	descApplied      = prometheus.NewDesc("keyraft_raft_applied_index", "Last log index applied to this node's state.", nil, nil)
	descLastContact  = prometheus.NewDesc("keyraft_raft_last_contact_seconds", "Seconds since the leader was last heard from (0 on the leader, -1 if never).", nil, nil)
	descMembers      = prometheus.NewDesc("keyraft_cluster_members", "Known members, by gossip status and whether they are in the Raft configuration.", []string{"gossip_status", "in_raft_config"}, nil)
	descEvents       = prometheus.NewDesc("keyraft_cluster_events_total", "Cluster-layer events on this node (applies, forwards, retries, leadership changes, reconcile actions).", []string{"event"}, nil)
	descStale        = prometheus.NewDesc("keyraft_stale", "1 while this node refuses local reads because it exceeded its staleness bound (-max-staleness).", nil, nil)
	descStaleRefused = prometheus.NewDesc("keyraft_stale_refusals_total", "Requests refused with KeyUnavailableException because this node was stale.", nil, nil)
	descStalePeriods = prometheus.NewDesc("keyraft_stale_periods_total", "Times this node became stale.", nil, nil)
	descKeys         = prometheus.NewDesc("keyraft_keys", "Keys in this node's replicated state (all accounts and regions).", nil, nil)
)

func (c *clusterCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descState, descTerm, descCommit, descApplied, descLastContact, descMembers, descEvents, descKeys, descStale, descStaleRefused, descStalePeriods} {
		ch <- d
	}
}

func (c *clusterCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.a.node.Status()
	for _, s := range []string{"Leader", "Follower", "Candidate", "Shutdown"} {
		v := 0.0
		if st.State == s {
			v = 1
		}
		ch <- prometheus.MustNewConstMetric(descState, prometheus.GaugeValue, v, s)
	}
	ch <- prometheus.MustNewConstMetric(descTerm, prometheus.GaugeValue, float64(st.Term))
	ch <- prometheus.MustNewConstMetric(descCommit, prometheus.GaugeValue, float64(st.CommitIndex))
	ch <- prometheus.MustNewConstMetric(descApplied, prometheus.GaugeValue, float64(st.AppliedIndex))
	ch <- prometheus.MustNewConstMetric(descLastContact, prometheus.GaugeValue, st.LastContact)
	type memberKey struct {
		status string
		inRaft bool
	}
	counts := map[memberKey]int{}
	for _, m := range st.Members {
		counts[memberKey{m.GossipStatus, m.InRaftConfig}]++
	}
	for k, n := range counts {
		in := "false"
		if k.inRaft {
			in = "true"
		}
		status := k.status
		if status == "" {
			status = "unknown"
		}
		ch <- prometheus.MustNewConstMetric(descMembers, prometheus.GaugeValue, float64(n), status, in)
	}
	for name, v := range st.Counters {
		ch <- prometheus.MustNewConstMetric(descEvents, prometheus.CounterValue, float64(v), name)
	}
	ch <- prometheus.MustNewConstMetric(descKeys, prometheus.GaugeValue, float64(c.a.state.KeyCount()))
	if f := c.a.fresh; f != nil {
		stale := 0.0
		if s, _ := f.stale(); s {
			stale = 1
		}
		ch <- prometheus.MustNewConstMetric(descStale, prometheus.GaugeValue, stale)
		ch <- prometheus.MustNewConstMetric(descStaleRefused, prometheus.CounterValue, float64(f.refused.Load()))
		ch <- prometheus.MustNewConstMetric(descStalePeriods, prometheus.CounterValue, float64(f.periods.Load()))
	}
}
